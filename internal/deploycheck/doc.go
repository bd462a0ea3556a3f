// Package deploycheck validates docker-compose.yml without a Docker engine: its structure, and
// every reference it makes (files, services, volumes, Tributary subcommands and settings). It holds
// no production code.
package deploycheck
