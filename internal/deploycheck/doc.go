// Package deploycheck validates docker-compose.yml without a Docker engine: its structure, and
// every reference it makes (files, services, volumes, Tributary subcommands and settings). It also
// builds and runs examples/, a module outside this one, and checks what the tributary binary
// links. It holds no production code.
package deploycheck
