#!/usr/bin/env bash
# Fetches, starts and stops a real Apache Kafka broker (org.apache.kafka:kafka_2.13 from Maven
# Central) as a single-node KRaft process, with jars, data and logs under $TRIBUTARY_STATE_DIR/kafka.
#
#   deploy/kafka.sh install|start|stop|status|reset
#
# Ports (loopback only): KAFKA_PORT (default 19092), KAFKA_CONTROLLER_PORT (default 19093),
# KAFKA_SASL_PORT (default 19094, SASL_PLAINTEXT with PLAIN and SCRAM; test credentials).
# KAFKA_HEAP (default 1g). start is idempotent: it returns at once when the broker already answers.
source "$(dirname "$0")/lib.sh"

PORT=${KAFKA_PORT:-19092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
SASL_PORT=${KAFKA_SASL_PORT:-19094} # SASL_PLAINTEXT: user tributary, password tributary-secret
DIR=$STATE/kafka
LIBS=${KAFKA_LIBS:-$DIR/libs} # KAFKA_LIBS lets several brokers share one download
PIDFILE=$DIR/broker.pid

install() {
	if [ -f "$LIBS/.complete" ] && cmp -s "$LIBS/.complete" "$ROOT/deploy/kafka/pom.xml"; then
		return 0
	fi
	command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
	command -v mvn >/dev/null 2>&1 || apt_install maven
	log "resolving the Kafka broker from Maven Central into $LIBS"
	rm -rf "$LIBS"
	mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$LIBS" -DincludeScope=runtime >&2 || die "mvn could not resolve the Kafka broker"
	cp "$ROOT/deploy/kafka/pom.xml" "$LIBS/.complete"
}

JAVA_OPTS=(-Xms256m -Xmx"${KAFKA_HEAP:-1g}" -XX:+UseG1GC -Djava.awt.headless=true
	-Dkafka.logs.dir="$DIR/log" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties"
	-cp "$LIBS/*")
java_run() { java "${JAVA_OPTS[@]}" "$@"; }

# kafka_up: the broker listens and its log says it started.
kafka_up() { port_open 127.0.0.1 "$PORT" && grep -q "Kafka Server started" "$DIR/log/server.log" 2>/dev/null; }

start() {
	if alive "$PIDFILE" && port_open 127.0.0.1 "$PORT"; then
		log "Kafka already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE")); logs in $DIR/log"
		return 0
	fi
	install
	port_open 127.0.0.1 "$PORT" && die "port $PORT is taken by another process; set KAFKA_PORT"
	mkdir -p "$DIR/log" "$DIR/data"
	sed -e "s#@STATE@#$DIR#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@SASL_PORT@#$SASL_PORT#g" \
		"$ROOT/deploy/kafka/server.properties.tmpl" >"$DIR/server.properties"
	# Test-only storage: when the broker template changes (listeners, SCRAM users), start afresh.
	local stamp
	stamp=$(cksum <"$ROOT/deploy/kafka/server.properties.tmpl")
	if [ -f "$DIR/data/meta.properties" ] && [ "$(cat "$DIR/format.stamp" 2>/dev/null)" != "$stamp" ]; then
		log "broker template changed; reformatting $DIR/data"
		rm -rf "$DIR/data" && mkdir -p "$DIR/data"
	fi
	if [ ! -f "$DIR/data/meta.properties" ]; then
		local id
		id=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
		log "formatting KRaft storage (cluster $id)"
		java_run kafka.tools.StorageTool format --standalone -t "$id" -c "$DIR/server.properties" \
			--add-scram 'SCRAM-SHA-256=[name=tributary,password=tributary-secret]' \
			--add-scram 'SCRAM-SHA-512=[name=tributary,password=tributary-secret]' >"$DIR/log/format.log" 2>&1 ||
			{ tail -n 20 "$DIR/log/format.log" >&2; die "kafka-storage format failed"; }
		echo "$stamp" >"$DIR/format.stamp"
	fi
	log "starting Kafka on 127.0.0.1:$PORT (controller $CONTROLLER_PORT); logs in $DIR/log"
	launch Kafka "$PIDFILE" "$DIR/log/stdout.log" 180 kafka_up show_logs java "${JAVA_OPTS[@]}" kafka.Kafka "$DIR/server.properties"
}

show_logs() { tail -n 40 "$DIR/log/stdout.log" "$DIR/log/server.log"; }

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop_pid Kafka "$PIDFILE" ;;
status) if alive "$PIDFILE" && port_open 127.0.0.1 "$PORT"; then echo "running (pid $(cat "$PIDFILE"))"; else echo "stopped"; exit 3; fi ;;
reset) stop_pid Kafka "$PIDFILE"; rm -rf "$DIR/data" "$DIR/log"; log "removed Kafka data and logs" ;;
*) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
