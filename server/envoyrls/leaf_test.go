package envoyrls

import (
	"os/exec"
	"strings"
	"testing"
)

// go-control-plane (about 60 modules) must stay in this leaf package: the
// decision core and the native APIs never import it.
func TestLeaf(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "../service", "../httpapi", "../grpcapi", "../config", "../metrics", "../dashboard").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "go-control-plane") {
			t.Errorf("%s is imported outside server/envoyrls", pkg)
		}
	}
}
