package deploycheck

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/testenv"
)

// The user's binary does not link the benchmark harness (cmd/tributary-bench has it), and kfake,
// franz-go's in-process broker, only for the demo's embedded Kafka.
func TestBinaryLeavesOutTheBenchHarness(t *testing.T) {
	deps := func(pkg string) map[string][]string {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pkg)
		cmd.Dir = testenv.RepoRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		m := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			m[f[0]] = f[1:]
		}
		return m
	}
	const harness, kfake = "github.com/tributary/tributary/internal/bench", "github.com/twmb/franz-go/pkg/kfake"
	user := deps("./cmd/tributary")
	if _, ok := user[harness]; ok {
		t.Errorf("cmd/tributary links %s", harness)
	}
	for pkg, imports := range user {
		for _, imp := range imports {
			if imp == kfake && pkg != "github.com/tributary/tributary/internal/cli" {
				t.Errorf("%s imports kfake into cmd/tributary; only the demo (internal/cli) may", pkg)
			}
		}
	}
	if _, ok := deps("./cmd/tributary-bench")[harness]; !ok {
		t.Errorf("cmd/tributary-bench does not link %s", harness)
	}
}
