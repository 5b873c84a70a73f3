package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

func plotResults(t *testing.T) []Result {
	t.Helper()
	res, err := Run(context.Background(), []Scenario{
		{Name: "bucket", Limits: []weir.Limit{mustLimit(t, "100/s burst=200")}},
		{Name: "fixed", Limits: []weir.Limit{mustLimit(t, "100/s algo=fixed-window")}},
		{Name: "two", Limits: []weir.Limit{mustLimit(t, "50/s"), mustLimit(t, "2000/m")}, Shadow: true},
	}, Options{Pattern: mustPattern(t, "bursts:500/10s,width=1s,base=50/s"), For: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPlotPNG decodes the picture and finds the admitted colour in it,
// in each of the panels (two columns, two rows).
func TestPlotPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := Plot(&buf, PNG, plotResults(t)); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() < 800 || b.Dy() < 500 {
		t.Fatalf("picture is %dx%d", b.Dx(), b.Dy())
	}
	// Count the pixels of the admitted line's colour in each quadrant.
	var quad [2][2]int
	rgba, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("decoded a %T, want *image.RGBA", img)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c := rgba.RGBAAt(x, y); c.R == 31 && c.G == 119 && c.B == 180 && c.A == 255 {
				quad[(y-b.Min.Y)*2/b.Dy()][(x-b.Min.X)*2/b.Dx()]++
			}
		}
	}
	t.Logf("quadrants %v", quad)
	if quad[0][0] < 100 || quad[0][1] < 100 || quad[1][0] < 100 || quad[1][1] != 0 {
		t.Errorf("admitted-colour pixels per quadrant %v: want the admitted line (over 100 pixels; the legend has about 30) in three panels, the fourth empty", quad)
	}
}

// TestPlotSVG parses the picture as XML and checks it holds the three
// titles and drawn paths.
func TestPlotSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := Plot(&buf, SVG, plotResults(t)); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var paths int
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			if tok.Name.Local == "path" {
				paths++
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" || paths < 30 {
		t.Errorf("root element %q, %d paths", root, paths)
	}
	// Titles are drawn as text or glyph paths; the names are in the file
	// either way when text is kept as text.
	for _, want := range []string{"bucket", "fixed", "two (shadow)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in the SVG text", want)
		}
	}
}

func TestPlotErrors(t *testing.T) {
	if err := Plot(io.Discard, PNG, nil); err == nil {
		t.Error("no results: no error")
	}
	if err := Plot(io.Discard, "gif", plotResults(t)[:1]); err == nil || !strings.Contains(err.Error(), "gif") {
		t.Errorf("gif: %v", err)
	}
	for in, want := range map[string]Format{"a.svg": SVG, "b.PNG": PNG, "c.gif": "", "d": ""} {
		f, err := FormatOf(in)
		if f != want || (want == "") != (err != nil) {
			t.Errorf("FormatOf(%q) = %q, %v", in, f, err)
		}
	}
}
