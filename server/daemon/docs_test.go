package daemon_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/daemon/daemontest"
)

// docsDir is the repository's docs directory.
const docsDir = "../../docs"

var curlLine = regexp.MustCompile(`^curl -s localhost:8080(\S+) -d '([^']*)'$`)

// Every `curl -s localhost:8080PATH -d 'BODY'` line of docs/server.md
// followed by its answer gets that answer from the built-in demo server
// (same JSON values, and the body ends with a newline).
func TestDocsCurlAnswers(t *testing.T) {
	s := start(t)
	n := 0
	for _, block := range daemontest.Fenced(t, filepath.Join(docsDir, "server.md"), "sh") {
		lines := strings.Split(block, "\n")
		for i := 0; i+1 < len(lines); i++ {
			m := curlLine.FindStringSubmatch(lines[i])
			if m == nil || !strings.HasPrefix(lines[i+1], "{") {
				continue
			}
			n++
			r := s.post(m[1], m[2])
			var got, want any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatalf("%s: answer %q: %v", lines[i], r.Body, err)
			}
			if err := json.Unmarshal([]byte(lines[i+1]), &want); err != nil {
				t.Fatalf("docs answer %q: %v", lines[i+1], err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\n got %s\nwant %s", lines[i], bytes.TrimSpace(r.Body), lines[i+1])
			}
			if !bytes.HasSuffix(r.Body, []byte("\n")) {
				t.Errorf("%s: the answer does not end with a newline", lines[i])
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d documented curl answers in docs/server.md, want at least 2", n)
	}
}
