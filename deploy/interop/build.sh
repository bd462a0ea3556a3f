#!/usr/bin/env bash
# Builds the Java downstream consumer (ReadTopics.java) against Apache Avro and kafka-clients from
# Maven Central into $TRIBUTARY_STATE_DIR/interop. Idempotent. Prints the classpath to use.
source "$(dirname "$0")/../lib.sh"
DIR=$STATE/interop
# One build at a time: internal/interop and internal/docscheck may run this at once.
mkdir -p "$STATE" && exec 9>"$STATE/interop.lock" && flock 9
if [ ! -f "$DIR/classes/ReadTopics.class" ] || [ "$ROOT/deploy/interop/ReadTopics.java" -nt "$DIR/classes/ReadTopics.class" ] ||
	! cmp -s "$DIR/libs/.complete" "$ROOT/deploy/interop/pom.xml"; then
	command -v javac >/dev/null 2>&1 || apt_install openjdk-17-jdk-headless
	command -v mvn >/dev/null 2>&1 || apt_install maven
	rm -rf "$DIR" && mkdir -p "$DIR/classes"
	log "resolving Apache Avro and kafka-clients from Maven Central"
	mvn -q -B -f "$ROOT/deploy/interop/pom.xml" dependency:copy-dependencies -DoutputDirectory="$DIR/libs" -DincludeScope=runtime >&2 ||
		die "mvn could not resolve the interop dependencies"
	cp "$ROOT/deploy/interop/pom.xml" "$DIR/libs/.complete"
	javac -d "$DIR/classes" -cp "$DIR/libs/*" "$ROOT/deploy/interop/ReadTopics.java" >&2 || die "javac failed"
fi
echo "$DIR/classes:$DIR/libs/*"
