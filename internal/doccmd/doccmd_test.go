package doccmd

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Command
	}{
		{`go test -run 'A|B' ./x`, []Command{{Args: []string{"go", "test", "-run", "A|B", "./x"}}}},
		{`cd bench && X=1 go test . > out.txt 2>&1`, []Command{{Args: []string{"cd", "bench"}}, {Args: []string{"X=1", "go", "test", "."}}}},
		{`(cd a && b) ; c "d\$e f" # comment`, []Command{{Op: "("}, {Args: []string{"cd", "a"}}, {Args: []string{"b"}}, {Op: ")"}, {Args: []string{"c", "d$e f"}}}},
		{`for i in $(seq 10); do /tmp/x.test -test.run '^$'; done | tee f`, []Command{{Args: []string{"for", "i", "in", "$(seq 10)"}}, {Args: []string{"do", "/tmp/x.test", "-test.run", "^$"}}, {Args: []string{"done"}, Pipe: true}, {Args: []string{"tee", "f"}}}},
		{`curl -s localhost:8091/records \| head -c 300`, []Command{{Args: []string{"curl", "-s", "localhost:8091/records", "|", "head", "-c", "300"}}}},
		{`a | b || c && d`, []Command{{Args: []string{"a"}, Pipe: true}, {Args: []string{"b"}}, {Args: []string{"c"}}, {Args: []string{"d"}}}},
	} {
		if got := Split(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestUnits(t *testing.T) {
	md := "Intro `cd a && go test\n-run X` and `b`.\n\n" +
		"```sh\ncd b\ngo test -run Y \\\n  ./c\n```\n" +
		"- item\n  ```\n  $ a\n    b\n  ```\n" +
		"| `t1` | x |\n| `t2 \\| u` | y |\n- item `i1`\n- item `i2`\n"
	want := [][]Line{
		{{N: 1, Text: "cd a && go test -run X"}, {N: 2, Text: "b"}},
		{{N: 5, Text: "cd b", Block: true}, {N: 6, Text: "go test -run Y    ./c", Block: true}},
		nil,
		{{N: 11, Text: "$ a", Block: true}, {N: 12, Text: "  b", Block: true}},
		{{N: 14, Text: "t1"}},
		{{N: 15, Text: "t2 | u"}},
		{{N: 16, Text: "i1"}},
		{{N: 17, Text: "i2"}},
	}
	if got := Units(md); !reflect.DeepEqual(got, want) {
		t.Errorf("Units = %+v\nwant %+v", got, want)
	}
}
