#!/usr/bin/env bash
# The benchmark command (make bench): installs and starts the real Kafka broker and ClickHouse
# server as make test does, builds tributary and tributary-bench, runs the harness
# (tributary-bench $BENCH_FLAGS, which runs bin/tributary for each service it measures), which
# writes BENCHMARKS.md and BENCHMARKS.json at the repository root, then stops the servers it started.
# The cluster scenario starts deploy/cluster.sh's local clusters itself (-cluster-script) and stops
# them when it ends, so they take no CPU while the other scenarios run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

start_servers

log "go build -o bin/tributary ./cmd/tributary; go build -o bin/tributary-bench ./cmd/tributary-bench"
go build -o bin/tributary ./cmd/tributary
go build -o bin/tributary-bench ./cmd/tributary-bench
log "tributary-bench ${BENCH_FLAGS:-} (servers: kafka $TRIBUTARY_TEST_KAFKA_BROKERS, clickhouse $TRIBUTARY_TEST_CLICKHOUSE_ADDR)"
# shellcheck disable=SC2086
bin/tributary-bench -tributary bin/tributary -out "$ROOT" -state "$ROOT/.state" -cluster-script "$ROOT/deploy/cluster.sh" ${BENCH_FLAGS:-}
