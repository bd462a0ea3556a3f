#!/usr/bin/env bash
# Starts and stops Tributary's local clusters on loopback, as our own processes, with config,
# data and logs under $TRIBUTARY_STATE_DIR/cluster (no Docker):
#   - ZooKeeper (Debian's zookeeper package, one node);
#   - ClickHouse, 2 shards x 2 replicas (four Debian clickhouse-server processes), cluster
#     "tributary" in remote_servers, macros {shard} and {replica} per server, distributed DDL;
#   - Kafka, 3 KRaft nodes (each broker and controller; the jars deploy/kafka.sh fetches), topics
#     with replication factor 3 and min.insync.replicas=2 by default.
#
#   deploy/cluster.sh start|stop|status|reset|env
#   deploy/cluster.sh kill NODE        SIGKILL one node (a real crash): zookeeper, ch1..ch4, kafka1..kafka3
#   deploy/cluster.sh start-node NODE  start that node again and wait until it is ready
#   deploy/cluster.sh logs NODE [N]    the last N (40) lines of each of that node's logs
#
# Ports (loopback), from CLUSTER_PORT_BASE (default 29000): ZooKeeper base+100; ClickHouse server
# i=1..4 native base+i, http base+10+i, interserver base+20+i (servers 1,2 are shard 1, servers 3,4
# shard 2); Kafka node j=1..3 broker base+90+j, controller base+95+j. CLUSTER_KAFKA_HEAP (512m).
# start is idempotent (what already answers is left alone), waits for every server with a deadline
# and fails loudly with the server's last log lines; stop stops only the processes start started.
# start and stop hold a lock ($TRIBUTARY_STATE_DIR/cluster.lock): concurrent calls run one by one.
source "$(dirname "$0")/lib.sh"

BASE=${CLUSTER_PORT_BASE:-29000}
DIR=$STATE/cluster
ZK_PORT=$((BASE + 100))
CH_NODES=(1 2 3 4)
KAFKA_NODES=(1 2 3)
ch_tcp() { echo $((BASE + $1)); }
ch_http() { echo $((BASE + 10 + $1)); }
ch_inter() { echo $((BASE + 20 + $1)); }
kafka_port() { echo $((BASE + 90 + $1)); }
kafka_ctl() { echo $((BASE + 95 + $1)); }
KAFKA_LIBS=${KAFKA_LIBS:-$STATE/kafka/libs} # shared with deploy/kafka.sh: one download
CH_BIN=${CLICKHOUSE_SERVER_BIN:-clickhouse-server}
ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar
DEADLINE=${CLUSTER_START_TIMEOUT:-120} # seconds, for the whole start

# --- readiness checks -------------------------------------------------------------------------
# ZooKeeper answers ruok before it serves; srvr reports a Mode only once it does.
zk_ok() {
	local out
	out=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT; printf srvr >&3; cat <&3" 2>/dev/null) || return 1
	grep -q '^Mode:' <<<"$out"
}
ch_query() { curl -fsS --max-time 3 "http://127.0.0.1:$(ch_http "$1")/" --data-binary "$2" 2>/dev/null; }
ch_ping() { [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$(ch_http "$1")/ping" 2>/dev/null)" = "Ok." ]; }
# ready: answers, sees all four servers of the cluster and reaches ZooKeeper.
ch_ok() {
	ch_ping "$1" || return 1
	[ "$(ch_query "$1" "SELECT count() FROM system.clusters WHERE cluster = 'tributary'")" = 4 ] || return 1
	ch_query "$1" "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null
}
kafka_ok() {
	port_open 127.0.0.1 "$(kafka_port "$1")" && grep -q "Kafka Server started" "$DIR/kafka$1/log/server.log" 2>/dev/null
}

# --- launching ---------------------------------------------------------------------------------
# refuse PORT NAME: dies when another process holds a port we are about to use.
refuse() { ! port_open 127.0.0.1 "$1" || die "port $1 ($2) is taken by another process; set CLUSTER_PORT_BASE"; }

install() {
	local pkgs=()
	[ -f /usr/share/java/zookeeper.jar ] || pkgs+=(zookeeper)
	command -v "$CH_BIN" >/dev/null 2>&1 || pkgs+=(clickhouse-server clickhouse-client)
	command -v curl >/dev/null 2>&1 || pkgs+=(curl)
	command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
	[ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
	[ -f /usr/share/java/zookeeper.jar ] || die "/usr/share/java/zookeeper.jar missing after installing zookeeper"
	command -v "$CH_BIN" >/dev/null 2>&1 || die "$CH_BIN not found after installing clickhouse-server"
	KAFKA_LIBS=$KAFKA_LIBS bash "$ROOT/deploy/kafka.sh" install
}

zk_launch() {
	local d=$DIR/zookeeper
	if alive "$d/pid" && zk_ok; then return 0; fi
	rm -f "$d/pid"
	refuse "$ZK_PORT" ZooKeeper
	mkdir -p "$d/data" "$d/log"
	sed -e "s#@DIR@#$d#g" -e "s#@ZK_PORT@#$ZK_PORT#g" "$ROOT/deploy/cluster/zoo.cfg.tmpl" >"$d/zoo.cfg"
	log "starting ZooKeeper on 127.0.0.1:$ZK_PORT; logs in $d/log"
	nohup java -Xms64m -Xmx256m -Dzookeeper.log.dir="$d/log" -cp "$ZK_CP" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >"$d/log/stdout.log" 2>&1 9>&- &
	echo $! >"$d/pid"
}

ch_launch() {
	local i=$1 d=$DIR/ch$1
	if alive "$d/pid" && ch_ping "$i"; then return 0; fi
	rm -f "$d/pid"
	refuse "$(ch_tcp "$i")" "ClickHouse $i native"
	refuse "$(ch_http "$i")" "ClickHouse $i http"
	refuse "$(ch_inter "$i")" "ClickHouse $i interserver"
	mkdir -p "$d"/{log,data,tmp,user_files,format_schemas}
	local shard=$(((i + 1) / 2)) replica="r$(((i - 1) % 2 + 1))"
	sed -e "s#@DIR@#$d#g" -e "s#@NODE@#$i#g" -e "s#@TCP_PORT@#$(ch_tcp "$i")#g" \
		-e "s#@HTTP_PORT@#$(ch_http "$i")#g" -e "s#@INTERSERVER_PORT@#$(ch_inter "$i")#g" \
		-e "s#@TCP_1@#$(ch_tcp 1)#g" -e "s#@TCP_2@#$(ch_tcp 2)#g" -e "s#@TCP_3@#$(ch_tcp 3)#g" -e "s#@TCP_4@#$(ch_tcp 4)#g" \
		-e "s#@ZK_PORT@#$ZK_PORT#g" -e "s#@SHARD@#$shard#g" -e "s#@REPLICA@#s$shard$replica#g" \
		"$ROOT/deploy/cluster/clickhouse.xml.tmpl" >"$d/config.xml"
	cp "$ROOT/deploy/clickhouse/users.xml" "$d/users.xml"
	: >"$d/log/clickhouse-server.err.log"
	log "starting ClickHouse $i (shard $shard, replica s$shard$replica) on 127.0.0.1:$(ch_tcp "$i"); logs in $d/log"
	nohup "$CH_BIN" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 9>&- &
	echo $! >"$d/pid"
}

kafka_java() { java -Xms128m -Xmx"${CLUSTER_KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true "$@"; }

kafka_launch() {
	local j=$1 d=$DIR/kafka$1 voters="" k
	if alive "$d/pid" && kafka_ok "$j"; then return 0; fi
	rm -f "$d/pid"
	refuse "$(kafka_port "$j")" "Kafka $j broker"
	refuse "$(kafka_ctl "$j")" "Kafka $j controller"
	for k in "${KAFKA_NODES[@]}"; do voters+="${voters:+,}$k@127.0.0.1:$(kafka_ctl "$k")"; done
	mkdir -p "$d/data" "$d/log"
	sed -e "s#@DIR@#$d#g" -e "s#@NODE@#$j#g" -e "s#@PORT@#$(kafka_port "$j")#g" \
		-e "s#@CONTROLLER_PORT@#$(kafka_ctl "$j")#g" -e "s#@VOTERS@#$voters#g" \
		"$ROOT/deploy/cluster/kafka.properties.tmpl" >"$d/server.properties"
	local opts=(-Dkafka.logs.dir="$d/log" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*")
	# All three nodes are formatted with one cluster id (static quorum: controller.quorum.voters).
	if [ ! -f "$d/data/meta.properties" ]; then
		[ -f "$DIR/kafka.cluster-id" ] || kafka_java "${opts[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$DIR/kafka.cluster-id"
		kafka_java "${opts[@]}" kafka.tools.StorageTool format -t "$(cat "$DIR/kafka.cluster-id")" \
			-c "$d/server.properties" >"$d/log/format.log" 2>&1 ||
			{ tail -n 20 "$d/log/format.log" >&2; die "kafka-storage format of node $j failed"; }
	fi
	: >"$d/log/server.log"
	log "starting Kafka node $j on 127.0.0.1:$(kafka_port "$j") (controller $(kafka_ctl "$j")); logs in $d/log"
	nohup java -Xms128m -Xmx"${CLUSTER_KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true "${opts[@]}" \
		kafka.Kafka "$d/server.properties" >"$d/log/stdout.log" 2>&1 9>&- &
	echo $! >"$d/pid"
}

# --- waiting -----------------------------------------------------------------------------------
# wait_for NAME PIDFILE CHECK... LOGS...: polls CHECK until it passes or the start deadline; on
# failure prints the logs and exits (the caller's trap stops what this run started).
wait_for() {
	local name=$1 pidfile=$2 check=$3
	shift 3
	while ! $check; do
		if ! alive "$pidfile"; then
			log "$name exited during start; last lines of its logs:"
			tail -n 30 "$@" >&2 || true
			die "$name did not start"
		fi
		if [ "$SECONDS" -ge "$DEADLINE" ]; then
			log "$name not ready after ${DEADLINE}s; last lines of its logs:"
			tail -n 30 "$@" >&2 || true
			die "$name did not start in time (CLUSTER_START_TIMEOUT=$DEADLINE)"
		fi
		sleep 0.2
	done
	log "$name ready at ${SECONDS}s"
}

start() {
	SECONDS=0
	mkdir -p "$DIR"
	install
	local i j
	# Once anything was launched, a failure below stops the whole cluster: no half-started leftovers.
	trap 'rc=$?; [ $rc -eq 0 ] || stop; exit $rc' EXIT
	zk_launch
	for j in "${KAFKA_NODES[@]}"; do kafka_launch "$j"; done
	# ClickHouse only once ZooKeeper serves: a server whose metadata holds replicated tables aborts
	# at startup when it cannot reach ZooKeeper (seen when ZooKeeper took 35 s on a busy machine).
	wait_for ZooKeeper "$DIR/zookeeper/pid" zk_ok "$DIR/zookeeper/log/stdout.log"
	for i in "${CH_NODES[@]}"; do ch_launch "$i"; done
	for i in "${CH_NODES[@]}"; do
		# shellcheck disable=SC2317
		eval "ch_ok_$i() { ch_ok $i; }"
		wait_for "ClickHouse $i" "$DIR/ch$i/pid" "ch_ok_$i" "$DIR/ch$i/log/stdout.log" "$DIR/ch$i/log/clickhouse-server.err.log"
	done
	for j in "${KAFKA_NODES[@]}"; do
		eval "kafka_ok_$j() { kafka_ok $j; }"
		wait_for "Kafka $j" "$DIR/kafka$j/pid" "kafka_ok_$j" "$DIR/kafka$j/log/stdout.log" "$DIR/kafka$j/log/server.log"
	done
	trap - EXIT
	log "cluster up in ${SECONDS}s: ZooKeeper 127.0.0.1:$ZK_PORT; ClickHouse $(ch_addrs); Kafka $(kafka_addrs); RSS $(rss_mb) MB"
}

ch_addrs() { local i s=""; for i in "${CH_NODES[@]}"; do s+="${s:+,}127.0.0.1:$(ch_tcp "$i")"; done; echo "$s"; }
kafka_addrs() { local j s=""; for j in "${KAFKA_NODES[@]}"; do s+="${s:+,}127.0.0.1:$(kafka_port "$j")"; done; echo "$s"; }

# pidfiles lists every process start may have started.
pidfiles() {
	local i j
	echo "$DIR/zookeeper/pid"
	for i in "${CH_NODES[@]}"; do echo "$DIR/ch$i/pid"; done
	for j in "${KAFKA_NODES[@]}"; do echo "$DIR/kafka$j/pid"; done
}

# rss_mb: resident memory of the cluster's processes, in MB.
rss_mb() {
	local f kb=0 r
	for f in $(pidfiles); do
		alive "$f" || continue
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$f")/status" 2>/dev/null || echo 0)
		kb=$((kb + ${r:-0}))
	done
	echo $((kb / 1024))
}

stop() {
	local i j stops=()
	# Kafka and ClickHouse first, ZooKeeper last (replicas close their sessions cleanly). Waits for
	# these stops only: when start's failure trap calls stop, the servers it launched are children
	# of this shell too, and a bare wait would wait for them to exit by themselves.
	for j in "${KAFKA_NODES[@]}"; do
		stop_pid "Kafka $j" "$DIR/kafka$j/pid" &
		stops+=($!)
	done
	for i in "${CH_NODES[@]}"; do
		stop_pid "ClickHouse $i" "$DIR/ch$i/pid" &
		stops+=($!)
	done
	wait "${stops[@]}"
	stop_pid ZooKeeper "$DIR/zookeeper/pid"
}

status() {
	local down=0 i j
	if alive "$DIR/zookeeper/pid" && zk_ok; then echo "zookeeper 127.0.0.1:$ZK_PORT running"; else echo "zookeeper stopped"; down=1; fi
	for i in "${CH_NODES[@]}"; do
		if alive "$DIR/ch$i/pid" && ch_ok "$i"; then echo "clickhouse$i 127.0.0.1:$(ch_tcp "$i") running"; else echo "clickhouse$i stopped"; down=1; fi
	done
	for j in "${KAFKA_NODES[@]}"; do
		if alive "$DIR/kafka$j/pid" && kafka_ok "$j"; then echo "kafka$j 127.0.0.1:$(kafka_port "$j") running"; else echo "kafka$j stopped"; down=1; fi
	done
	echo "rss ${rss_mb:-$(rss_mb)} MB"
	return $((down * 3))
}

# node_pidfile NODE: the pid file of one node (zookeeper, ch1..ch4, kafka1..kafka3); dies naming
# the valid nodes for any other name.
node_pidfile() {
	case "$1" in
	zookeeper) echo "$DIR/zookeeper/pid" ;;
	ch[1-4]) echo "$DIR/$1/pid" ;;
	kafka[1-3]) echo "$DIR/$1/pid" ;;
	*) die "unknown node \"$1\": want zookeeper, ch1..ch4 or kafka1..kafka3" ;;
	esac
}

# kill_node NODE: SIGKILL, as a crash would (no clean shutdown, no session closed), and waits up
# to 10 s for the process to be gone.
kill_node() {
	local name=$1 pidfile pid i
	pidfile=$(node_pidfile "$name") || exit 1
	if ! alive "$pidfile"; then
		rm -f "$pidfile"
		log "$name is not running"
		return 0
	fi
	pid=$(cat "$pidfile")
	kill -KILL "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) still runs 10 s after SIGKILL"
	rm -f "$pidfile"
	log "killed $name (pid $pid) with SIGKILL"
}

# start_node NODE: launches one node as start does (what already answers is left alone) and waits
# until it is ready, with start's deadline; a ClickHouse server is ready once it reaches ZooKeeper.
start_node() {
	local name=$1 n
	node_pidfile "$name" >/dev/null || exit 1
	SECONDS=0
	case "$name" in
	zookeeper)
		zk_launch
		wait_for ZooKeeper "$DIR/zookeeper/pid" zk_ok "$DIR/zookeeper/log/stdout.log"
		;;
	ch*)
		n=${name#ch}
		ch_launch "$n"
		# shellcheck disable=SC2317
		eval "ch_ok_$n() { ch_ok $n; }"
		wait_for "ClickHouse $n" "$DIR/ch$n/pid" "ch_ok_$n" "$DIR/ch$n/log/stdout.log" "$DIR/ch$n/log/clickhouse-server.err.log"
		;;
	kafka*)
		n=${name#kafka}
		kafka_launch "$n"
		eval "kafka_ok_$n() { kafka_ok $n; }"
		wait_for "Kafka $n" "$DIR/kafka$n/pid" "kafka_ok_$n" "$DIR/kafka$n/log/stdout.log" "$DIR/kafka$n/log/server.log"
		;;
	esac
}

# node_logs NODE [N]: the last N (40) lines of each of the node's log files, named.
node_logs() {
	local pidfile d f
	pidfile=$(node_pidfile "$1") || exit 1
	d=$(dirname "$pidfile")/log
	for f in "$d"/*; do
		[ -s "$f" ] || continue
		echo "==> $f (last ${2:-40} lines)"
		tail -n "${2:-40}" "$f"
	done
}

# locked CMD: runs CMD holding the cluster's lock ($STATE/cluster.lock), so that two starts at once
# (make test's and a test binary's, or two test binaries) do not launch the same servers twice:
# the second waits for the first and then finds everything up; a stop waits for a start. The
# servers are launched with the lock's descriptor closed (9>&-), else they would hold it forever.
locked() {
	mkdir -p "$STATE"
	exec 9>"$STATE/cluster.lock"
	if ! flock -n 9; then
		log "waiting for another deploy/cluster.sh start or stop (lock $STATE/cluster.lock)"
		flock 9
	fi
	"$@"
}

case "${1:-}" in
install) install ;;
start) locked start ;;
stop) locked stop ;;
status) status ;;
# env: the addresses, as shell assignments (for eval, and for the cluster tests).
env) printf 'TRIBUTARY_TEST_CLUSTER_CLICKHOUSE_ADDR=%s\nTRIBUTARY_TEST_CLUSTER_KAFKA_BROKERS=%s\nTRIBUTARY_TEST_CLUSTER_NAME=tributary\n' "$(ch_addrs)" "$(kafka_addrs)" ;;
reset) locked stop; rm -rf "$DIR"; log "removed $DIR" ;;
kill) [ -n "${2:-}" ] || die "usage: $0 kill NODE (zookeeper, ch1..ch4, kafka1..kafka3)"; kill_node "$2" ;;
start-node) [ -n "${2:-}" ] || die "usage: $0 start-node NODE (zookeeper, ch1..ch4, kafka1..kafka3)"; start_node "$2" ;;
logs) [ -n "${2:-}" ] || die "usage: $0 logs NODE [LINES] (zookeeper, ch1..ch4, kafka1..kafka3)"; node_logs "$2" "${3:-40}" ;;
*) echo "usage: $0 install|start|stop|status|reset|env|kill NODE|start-node NODE|logs NODE [LINES]" >&2; exit 2 ;;
esac
