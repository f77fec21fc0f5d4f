package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLinksResolve: every relative link of README.md names a file
// of this repository (a clone has nothing outside it), and the demo waits
// for readiness before it sends.
func TestReadmeLinksResolve(t *testing.T) {
	root := "../.."
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	links := regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(readme, -1)
	if len(links) < 5 {
		t.Fatalf("%d links found: the pattern lost some", len(links))
	}
	abs, _ := filepath.Abs(root)
	for _, l := range links {
		target, _, _ := strings.Cut(l[1], "#")
		if strings.Contains(target, "://") || target == "" {
			continue
		}
		p, _ := filepath.Abs(filepath.Join(root, target))
		if !strings.HasPrefix(p, abs+string(filepath.Separator)) {
			t.Errorf("link %q points outside the repository", l[1])
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("link %q: %v", l[1], err)
		}
	}
	demo := readme[strings.Index(readme, "## 30-second demo"):]
	ready, send := strings.Index(demo, "/health/ready"), strings.Index(demo, "printf ")
	if ready < 0 || send < 0 || ready > send {
		t.Error("the demo does not wait for /health/ready before it sends")
	}
}
