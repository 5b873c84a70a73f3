package bench

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-go/weir/internal/doccmd"
	"github.com/weir-go/weir/server/daemon/daemontest"
)

// TestDocsGrpcurl runs the grpcurl command of docs/envoy.md, "Trying it
// without Envoy", as written, with grpcurl itself (`go tool grpcurl`: this
// module's go.mod declares the tool, so that no module users depend on
// carries it), against the built-in demo (`weir serve`, on free ports: the
// doc's localhost:8081 is replaced by the server's gRPC address). grpcurl
// finds the method by the server's reflection service. Its answer must be
// the JSON the doc shows in the comment line after the command.
func TestDocsGrpcurl(t *testing.T) {
	b, err := os.ReadFile("../docs/envoy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Trying it without Envoy\n")
	if !ok {
		t.Fatal("docs/envoy.md has no section \"Trying it without Envoy\"")
	}
	var args []string
	var shown string
	for _, unit := range doccmd.Units(section) {
		for i, l := range unit {
			cmds := doccmd.Split(l.Text)
			if !l.Block || len(cmds) != 1 || cmds[0].Args[0] != "grpcurl" {
				continue
			}
			args = cmds[0].Args[1:]
			if i+1 < len(unit) {
				shown, _ = strings.CutPrefix(strings.TrimSpace(unit[i+1].Text), "# ")
			}
		}
	}
	if args == nil || shown == "" {
		t.Fatalf("docs/envoy.md: no grpcurl command followed by its answer (# {...}) in \"Trying it without Envoy\"")
	}
	s := daemontest.Start(t, daemontest.Serve)
	for i, a := range args {
		if a == "localhost:8081" {
			args[i] = s.GRPC
		}
	}
	cmd := exec.Command("go", append([]string{"tool", "grpcurl"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool grpcurl %q: %v\n%s", args, err, stderr.String())
	}
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("grpcurl's answer %q: %v", out, err)
	}
	if err := json.Unmarshal([]byte(shown), &want); err != nil {
		t.Fatalf("docs/envoy.md's answer %q: %v", shown, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("grpcurl answers\n%s\ndocs/envoy.md shows\n%s", out, shown)
	}
}
