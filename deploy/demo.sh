#!/usr/bin/env bash
# The main job (make demo): starts the real local ClickHouse if it is not running, runs
# `tributary demo` (embedded Kafka broker), and stops ClickHouse again if it started it.
# TRIBUTARY_DEMO_KAFKA=external uses a real broker at TRIBUTARY_KAFKA_BROKERS instead; with
# DEMO_REAL_KAFKA=1 this script starts the local one and points the demo at it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

started=()
cleanup() {
	local rc=$?
	for s in "${started[@]}"; do "$ROOT/deploy/$s.sh" stop >/dev/null 2>&1 || true; done
	exit $rc
}
trap cleanup EXIT INT TERM

servers=(clickhouse)
if [ "${DEMO_REAL_KAFKA:-0}" = 1 ]; then
	servers+=(kafka)
	export TRIBUTARY_DEMO_KAFKA=external TRIBUTARY_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-19092}
fi
for s in "${servers[@]}"; do
	"$ROOT/deploy/$s.sh" status >/dev/null 2>&1 || started+=("$s")
	"$ROOT/deploy/$s.sh" start
done
export TRIBUTARY_CLICKHOUSE_ADDR=${TRIBUTARY_CLICKHOUSE_ADDR:-127.0.0.1:${CLICKHOUSE_TCP_PORT:-19000}}
go run ./cmd/tributary demo
