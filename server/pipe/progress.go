package pipe

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// ProgressConfig says what a [Progress] line shows.
type ProgressConfig struct {
	// Size is the number of bytes expected, for the bar, the percentage
	// and the ETA; 0 means unknown, and the line shows none of them.
	Size int64
	// Interval is the time between two drawings; zero means a second.
	Interval time.Duration
	// Width returns the terminal's width in columns now; it is called
	// before every drawing, so a resized terminal is followed. Nil, or a
	// result below 1, means 80 columns.
	Width func() int
}

// DefaultWidth is the width of a line when the terminal's is unknown.
const DefaultWidth = 80

// Progress draws a pv-style progress line every interval, each over the
// last ("\r"), and once more, with a newline, at Stop. A line never
// reaches the terminal's last column, so it never wraps.
type Progress struct {
	w      io.Writer
	copied func() int64
	cfg    ProgressConfig
	start  time.Time

	// Owned by the drawing goroutine.
	last     int64     // bytes at the last sample
	lastAt   time.Time // time of the last sample
	cur      float64   // bytes per second between the last two samples
	drawn    int       // length of the last line drawn
	failed   bool      // writing to w failed: draw no more
	quit     chan struct{}
	refit    chan struct{}
	finished chan struct{}
}

// StartProgress starts drawing the progress of c on w (standard error,
// usually a terminal). Call Stop when the copy ends.
func StartProgress(w io.Writer, c *Copier, cfg ProgressConfig) *Progress {
	return startProgress(w, c.Copied, cfg)
}

func startProgress(w io.Writer, copied func() int64, cfg ProgressConfig) *Progress {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	now := time.Now()
	p := &Progress{w: w, copied: copied, cfg: cfg, start: now, lastAt: now,
		quit: make(chan struct{}), refit: make(chan struct{}, 1), finished: make(chan struct{})}
	go p.run()
	return p
}

// Refit draws the line again at once, at the terminal's width now: call
// it when the terminal was resized (SIGWINCH). It does not wait.
func (p *Progress) Refit() {
	select {
	case p.refit <- struct{}{}:
	default: // one is pending already
	}
}

// Stop draws the final line, ends it with a newline, and returns when it
// is written.
func (p *Progress) Stop() {
	close(p.quit)
	<-p.finished
}

func (p *Progress) run() {
	defer close(p.finished)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw(time.Now(), true, false)
		case <-p.refit:
			p.draw(time.Now(), false, false)
		case <-p.quit:
			p.draw(time.Now(), true, true)
			return
		}
	}
}

// draw writes the line for now; sample takes a new current rate (a refit
// shows the last one again).
func (p *Progress) draw(now time.Time, sample, final bool) {
	n := p.copied()
	elapsed := now.Sub(p.start)
	if sample {
		p.cur = 0
		if d := now.Sub(p.lastAt).Seconds(); d > 0 {
			p.cur = float64(n-p.last) / d
		}
		p.last, p.lastAt = n, now
	}
	avg := 0.0
	if s := elapsed.Seconds(); s > 0 {
		avg = float64(n) / s
	}
	cur := p.cur
	if final {
		cur = avg
	}
	width := DefaultWidth
	if p.cfg.Width != nil {
		if w := p.cfg.Width(); w > 0 {
			width = w
		}
	}
	line := Line(Stats{Bytes: n, Elapsed: elapsed, Rate: cur, Average: avg, Size: p.cfg.Size, Final: final}, width)
	// Cover what is left of a longer previous line, but never up to the
	// last column of a terminal that has just become narrower.
	if pad := min(p.drawn, width-1) - len(line); pad > 0 {
		line += strings.Repeat(" ", pad)
	}
	p.drawn = len(line)
	if final {
		line += "\n"
	}
	if p.failed {
		return
	}
	if _, err := io.WriteString(p.w, "\r"+line); err != nil {
		p.failed = true // standard error is gone: stop drawing
	}
}

// Stats are the figures of one progress line.
type Stats struct {
	Bytes   int64         // copied so far
	Elapsed time.Duration // since the start
	Rate    float64       // bytes per second lately
	Average float64       // bytes per second since the start
	Size    int64         // bytes expected; 0 unknown
	Final   bool          // the copy has ended: no ETA
}

// Line formats one progress line in at most width-1 columns (a line that
// reached the last column could wrap), as pv lays it out:
//
//	1.50MiB 0:00:06 [ 256KiB/s] [ 255KiB/s] [=====>        ] 37% ETA 0:00:10
//
// The bar, percentage and ETA appear only when the size is known; the
// bar takes the width the rest leaves. On a narrow terminal the parts that
// matter least go first: the bar, then the average rate, the ETA, the
// clock, the current rate and the percentage; the byte count stays, cut
// to the width if it must.
func Line(s Stats, width int) string {
	avail := max(width-1, 1)
	type part struct {
		text string
		rank int // parts with the lowest rank are dropped first
	}
	parts := []part{
		{fmt.Sprintf("%8s", humanBytes(float64(s.Bytes))), 7},
		{clock(s.Elapsed), 3},
		{fmt.Sprintf("[%9s/s]", humanBytes(s.Rate)), 4},
		{fmt.Sprintf("[%9s/s]", humanBytes(s.Average)), 1},
	}
	const minBar = 3 // "[=>" plus one column at least
	bar := -1        // index of the bar in parts; -1: none
	if s.Size > 0 {
		bar = len(parts)
		parts = append(parts, part{"", 0})
		frac := min(float64(s.Bytes)/float64(s.Size), 1)
		parts = append(parts, part{fmt.Sprintf("%3d%%", int(frac*100)), 5})
		switch {
		case s.Final:
			parts = append(parts, part{"            ", 2}) // covers the ETA of the line before
		case s.Average > 0 && s.Bytes < s.Size:
			eta := time.Duration(float64(s.Size-s.Bytes) / s.Average * float64(time.Second))
			parts = append(parts, part{"ETA " + clock(eta), 2})
		default:
			parts = append(parts, part{"ETA -:--:--", 2})
		}
	}
	length := func() int {
		n := -1
		for i, p := range parts {
			if p.rank < 0 {
				continue
			}
			n += 1 + len(p.text)
			if i == bar {
				n += 2 + minBar // the brackets and the smallest bar
			}
		}
		return n
	}
	for length() > avail {
		drop, lowest := -1, math.MaxInt
		for i, p := range parts {
			if p.rank >= 0 && p.rank < lowest && i != 0 {
				drop, lowest = i, p.rank
			}
		}
		if drop < 0 {
			break // only the byte count is left
		}
		parts[drop].rank = -1
	}
	if bar >= 0 && parts[bar].rank >= 0 {
		w := minBar + avail - length()
		frac := min(float64(s.Bytes)/float64(s.Size), 1)
		fill := int(frac * float64(w))
		b := strings.Repeat("=", fill)
		if fill < w {
			b += ">" + strings.Repeat(" ", w-fill-1)
		}
		parts[bar].text = "[" + b + "]"
	}
	var b strings.Builder
	for _, p := range parts {
		if p.rank < 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.text)
	}
	line := b.String()
	if len(line) > avail {
		line = line[:avail]
	}
	return line
}

// humanBytes writes a byte count or rate with three significant digits and
// a binary unit, as pv does: 512B, 1.00KiB, 12.3MiB, 999GiB.
func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%.0fB", math.Floor(v))
	case v < 10:
		return fmt.Sprintf("%.2f%s", v, units[i])
	case v < 100:
		return fmt.Sprintf("%.1f%s", v, units[i])
	}
	return fmt.Sprintf("%.0f%s", v, units[i])
}

// clock formats d as H:MM:SS.
func clock(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
