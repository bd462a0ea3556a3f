// Command tributary-bench runs Tributary's benchmark harness against the real local servers and
// writes BENCHMARKS.md and BENCHMARKS.json (make bench). It is kept out of the tributary binary,
// which it runs for every service it measures. Run `tributary-bench -h`.
package main

import (
	"os"

	"github.com/tributary/tributary/internal/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
