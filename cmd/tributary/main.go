// Command tributary runs Tributary's roles: migrate, consumer, query, demo. Run `tributary help`.
package main

import (
	"os"

	"github.com/tributary/tributary/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
