package sim

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// A Format is a picture format Plot writes.
type Format string

// The formats.
const (
	SVG Format = "svg"
	PNG Format = "png"
)

// FormatOf returns the format named by a file's extension (.svg or .png).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		return SVG, nil
	case ".png":
		return PNG, nil
	}
	return "", fmt.Errorf("plot file %q: want a .svg or .png name", path)
}

var (
	offeredColor  = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	offeredFill   = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	admittedColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	admittedFill  = color.NRGBA{R: 31, G: 119, B: 180, A: 110}
)

// Plot draws the results side by side, one panel per scenario on the same
// scales (two columns when there are several): the units offered and
// admitted per second over time, and in each title what was admitted and
// the largest count in a window against its bound. It writes the picture
// to w in format f.
func Plot(w io.Writer, f Format, results []Result) error {
	if len(results) == 0 {
		return fmt.Errorf("plot: no results")
	}
	cols := min(2, len(results))
	rows := (len(results) + cols - 1) / cols
	unit, unitName := timeUnit(results[0].Duration)
	var ymax float64
	for _, r := range results {
		for _, v := range r.OfferedSeries {
			ymax = max(ymax, float64(v)/r.BinWidth.Seconds())
		}
	}
	if ymax == 0 {
		ymax = 1
	}
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, r := range results {
		p, err := panel(r, unit, unitName, ymax*1.08)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = p
	}
	width := vg.Length(cols) * 5.5 * vg.Inch
	height := vg.Length(rows) * 3 * vg.Inch
	var c vg.CanvasWriterTo
	switch f {
	case SVG:
		c = vgsvg.New(width, height)
	case PNG:
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))}
	default:
		return fmt.Errorf("plot: unknown format %q (want svg or png)", f)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	_, err := c.WriteTo(w)
	return err
}

// panel draws one result.
func panel(r Result, unit time.Duration, unitName string, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	title := r.Scenario
	if r.Shadow {
		title += " (shadow)"
	}
	var pct float64
	if r.OfferedUnits > 0 {
		pct = 100 * float64(r.AdmittedUnits) / float64(r.OfferedUnits)
	}
	var lines []string
	for _, l := range r.Limits {
		line := fmt.Sprintf("most in %s: %d (bound %d)", periodName(l.Limit), l.MaxInWindow, l.WindowBound)
		if l.MaxInWindow < 0 {
			line = fmt.Sprintf("most in %s: not tracked (bound %d)", periodName(l.Limit), l.WindowBound)
		}
		if len(r.Limits) > 1 || l.Name != r.Scenario {
			line = l.Name + ": " + line
		}
		lines = append(lines, line)
	}
	p.Title.Text = fmt.Sprintf("%s\nadmitted %.1f%% of %d requests\n%s", title, pct, r.Offered, strings.Join(lines, "\n"))
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.X.Label.Text = "time (" + unitName + ")"
	p.Y.Label.Text = "units per second"
	p.X.Min, p.X.Max = 0, float64(r.Duration)/float64(unit)
	p.Y.Min, p.Y.Max = 0, ymax
	p.Add(plotter.NewGrid())
	series := func(v []int64) plotter.XYs {
		xy := make(plotter.XYs, len(v)+1)
		for i, n := range v {
			xy[i].X = float64(time.Duration(i)*r.BinWidth) / float64(unit)
			xy[i].Y = float64(n) / r.BinWidth.Seconds()
		}
		// The step line ends at the end of the last bin (or of the run).
		end := min(time.Duration(len(v))*r.BinWidth, r.Duration)
		xy[len(v)].X = float64(end) / float64(unit)
		if len(v) > 0 {
			xy[len(v)].Y = xy[len(v)-1].Y
		}
		return xy
	}
	offered, err := plotter.NewLine(series(r.OfferedSeries))
	if err != nil {
		return nil, err
	}
	offered.StepStyle = plotter.PostStep
	offered.Color, offered.FillColor = offeredColor, offeredFill
	admitted, err := plotter.NewLine(series(r.AdmittedSeries))
	if err != nil {
		return nil, err
	}
	admitted.StepStyle = plotter.PostStep
	admitted.Color, admitted.FillColor = admittedColor, admittedFill
	admitted.Width = vg.Points(1.2)
	p.Add(offered, admitted)
	p.Legend.Add("offered", offered)
	p.Legend.Add("admitted", admitted)
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	return p, nil
}

// timeUnit picks the unit of the time axis for a run of length d.
func timeUnit(d time.Duration) (time.Duration, string) {
	switch {
	case d >= 3*24*time.Hour:
		return 24 * time.Hour, "days"
	case d >= 3*time.Hour:
		return time.Hour, "hours"
	case d >= 3*time.Minute:
		return time.Minute, "minutes"
	case d >= 3*time.Second:
		return time.Second, "seconds"
	case d >= 3*time.Millisecond:
		return time.Millisecond, "ms"
	case d >= 3*time.Microsecond:
		return time.Microsecond, "µs"
	}
	return 1, "ns"
}
