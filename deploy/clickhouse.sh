#!/usr/bin/env bash
# Installs, starts and stops a real local ClickHouse server (Debian's clickhouse-server package)
# as our own process, with config, data and logs under $TRIBUTARY_STATE_DIR/clickhouse.
#
#   deploy/clickhouse.sh install|start|stop|status|reset
#
# Ports (loopback only): CLICKHOUSE_TCP_PORT (native, default 19000), CLICKHOUSE_HTTP_PORT (default 18123).
# start is idempotent: it returns at once when the server already answers.
source "$(dirname "$0")/lib.sh"

TCP_PORT=${CLICKHOUSE_TCP_PORT:-19000}
HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-18123}
DIR=$STATE/clickhouse
PIDFILE=$DIR/server.pid
BIN=${CLICKHOUSE_SERVER_BIN:-clickhouse-server}

ping_ok() { [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/ping" 2>/dev/null)" = "Ok." ]; }

install() {
	command -v "$BIN" >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 && return 0
	apt_install clickhouse-server clickhouse-client curl
	command -v "$BIN" >/dev/null 2>&1 || die "$BIN not found after installing clickhouse-server"
}

start() {
	if alive "$PIDFILE" && ping_ok; then
		log "ClickHouse already running on 127.0.0.1:$TCP_PORT (pid $(cat "$PIDFILE")); logs in $DIR/log"
		return 0
	fi
	install
	port_open 127.0.0.1 "$TCP_PORT" && die "port $TCP_PORT is taken by another process; set CLICKHOUSE_TCP_PORT"
	mkdir -p "$DIR"/{log,data,tmp,user_files,format_schemas}
	sed -e "s#@STATE@#$DIR#g" -e "s#@TCP_PORT@#$TCP_PORT#g" -e "s#@HTTP_PORT@#$HTTP_PORT#g" \
		"$ROOT/deploy/clickhouse/config.xml.tmpl" >"$DIR/config.xml"
	cp "$ROOT/deploy/clickhouse/users.xml" "$DIR/users.xml"
	: >"$DIR/log/clickhouse-server.err.log"
	log "starting ClickHouse on 127.0.0.1:$TCP_PORT (http $HTTP_PORT); logs in $DIR/log"
	launch ClickHouse "$PIDFILE" "$DIR/log/stdout.log" 120 ping_ok show_logs "$BIN" --config-file="$DIR/config.xml"
}

show_logs() { tail -n 30 "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.err.log"; }

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop_pid ClickHouse "$PIDFILE" ;;
status) if alive "$PIDFILE" && ping_ok; then echo "running (pid $(cat "$PIDFILE"))"; else echo "stopped"; exit 3; fi ;;
reset) stop_pid ClickHouse "$PIDFILE"; rm -rf "$DIR"; log "removed $DIR" ;;
*) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
