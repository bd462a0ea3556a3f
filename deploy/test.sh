#!/usr/bin/env bash
# The test command (make test): installs and starts the real Kafka broker and ClickHouse server and
# the local clusters (deploy/cluster.sh), runs go vet and every test with -race (integration,
# end-to-end and cluster included, fuzz seed corpora too), then stops the servers it started.
# Fails if a server cannot start: nothing is skipped.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# The UI test drives Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || apt_install chromium
# internal/chdbcheck replays every statement on current ClickHouse releases (chdb, from PyPI); it
# fails if they cannot be installed, and the other tests still run.
bash "$ROOT/deploy/chdb.sh" install || log "chdb could not be installed: internal/chdbcheck will fail"
# producer/gateway's TestOTLPWithThePythonSDK sends with the OpenTelemetry Python SDK (PyPI); it
# runs the same script and fails, naming it, if the SDK cannot be installed.
bash "$ROOT/deploy/otlp/venv.sh" >/dev/null || log "the OpenTelemetry Python SDK could not be installed: TestOTLPWithThePythonSDK will fail"
# producer/gateway's TestOTLPThroughTheCollector runs a Collector built from the upstream modules
# (Go module proxy); built here, before the tests compete for the cores, and cached in .state/.
bash "$ROOT/deploy/otlp/collector.sh" >/dev/null || log "the OpenTelemetry Collector could not be built: TestOTLPThroughTheCollector will fail"

start_servers
# The cluster tests (internal/cluster) share the local clusters of deploy/cluster.sh (ZooKeeper,
# ClickHouse 2 x 2, Kafka x 3): started here once, in the background while go vet runs, and
# stopped on exit if started here. Their TestMain finds them up and leaves them alone (a start of
# its own would wait on the cluster's lock for this one).
if ! "$ROOT/deploy/cluster.sh" status >/dev/null 2>&1; then
	SERVERS_STARTED+=(cluster)
fi
"$ROOT/deploy/cluster.sh" start &
cluster_start=$!

log "go vet ./..."
go vet ./...
wait "$cluster_start" || die "deploy/cluster.sh start failed (its log lines are above): the cluster tests need it"
log "go test -race ./... (servers: kafka $TRIBUTARY_TEST_KAFKA_BROKERS, clickhouse $TRIBUTARY_TEST_CLICKHOUSE_ADDR)"
go test -race -count=1 -timeout "${TEST_TIMEOUT:-20m}" ${TEST_FLAGS:-} ./...
