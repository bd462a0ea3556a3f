# Shared helpers for deploy/*.sh. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${TRIBUTARY_STATE_DIR:-$ROOT/.state}

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# alive PIDFILE: true when the PID in the file is a live process.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_open HOST PORT: true when a TCP connect succeeds.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# apt_install PKG...: installs Debian packages, running apt-get update once per call.
apt_install() {
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	log "installing Debian packages: $*"
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}

# launch NAME PIDFILE OUT TRIES CHECK SHOWLOGS CMD...: runs CMD in the background, its output in
# OUT and its pid in PIDFILE, and runs CHECK every half second until it succeeds. When the process
# dies first or TRIES checks fail, it runs SHOWLOGS (the end of the server's logs), stops the
# process and exits 1.
launch() {
	local name=$1 pidfile=$2 out=$3 tries=$4 check=$5 showlogs=$6 i
	shift 6
	nohup "$@" >"$out" 2>&1 &
	echo $! >"$pidfile"
	for i in $(seq 1 "$tries"); do
		if "$check"; then
			log "$name is up (pid $(cat "$pidfile"))"
			return 0
		fi
		alive "$pidfile" || break
		sleep 0.5
	done
	log "$name did not come up; last lines of its logs:"
	"$showlogs" >&2 || true
	stop_pid "$name" "$pidfile" || true
	exit 1
}

# stop_pid NAME PIDFILE: TERM, wait up to 30 s, then KILL; removes the pid file.
stop_pid() {
	local name=$1 pidfile=$2 pid i
	if ! alive "$pidfile"; then
		rm -f "$pidfile"
		log "$name is not running"
		return 0
	fi
	pid=$(cat "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) ignored TERM for 30 s; sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "$name stopped"
}

# start_servers: starts the local ClickHouse and Kafka servers if they are not running, stops on
# exit the ones it started, and exports the TRIBUTARY_TEST_* addresses the tests and the
# benchmark harness use. For make test and make bench.
start_servers() {
	SERVERS_STARTED=()
	trap 'rc=$?; for s in "${SERVERS_STARTED[@]}"; do "$ROOT/deploy/$s.sh" stop || true; done; exit $rc' EXIT INT TERM
	local s
	for s in clickhouse kafka; do
		if ! "$ROOT/deploy/$s.sh" status >/dev/null 2>&1; then
			SERVERS_STARTED+=("$s")
		fi
		"$ROOT/deploy/$s.sh" start
	done
	export TRIBUTARY_TEST_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-19092}
	export TRIBUTARY_TEST_KAFKA_SASL_BROKERS=127.0.0.1:${KAFKA_SASL_PORT:-19094}
	export TRIBUTARY_TEST_CLICKHOUSE_ADDR=127.0.0.1:${CLICKHOUSE_TCP_PORT:-19000}
}

# python_venv NAME REQUIREMENTS WHAT: makes (once, and again when REQUIREMENTS changes) a venv in
# $STATE/NAME with REQUIREMENTS from PyPI, one install at a time, logging "installing WHAT from
# PyPI"; prints the interpreter to use; dies naming the step that failed.
python_venv() {
	local dir=$STATE/$1 req=$2
	mkdir -p "$STATE" && exec 9>"$STATE/$1.lock" && flock 9
	if ! cmp -s "$dir/.complete" "$req"; then
		command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
		rm -rf "$dir"
		if ! python3 -m venv "$dir" >&2; then
			apt_install python3-venv
			rm -rf "$dir" && python3 -m venv "$dir" >&2 || die "python3 -m venv failed"
		fi
		log "installing $3 from PyPI"
		"$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 || die "pip could not install $req"
		cp "$req" "$dir/.complete"
	fi
	echo "$dir/bin/python"
}
