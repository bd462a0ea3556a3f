# Tributary. The two commands that work on a fresh machine:
#   make demo   the main job: the whole pipeline on a demo load (embedded Kafka, real local ClickHouse)
#   make test   every test, integration included, on a real Kafka broker and ClickHouse server
GO ?= go

.PHONY: demo test bench build vet fmt fuzz servers stop clean help

help:
	@echo "make demo | make test | make bench | make build | make servers | make stop | make fuzz | make clean"

demo:
	@bash deploy/demo.sh

test:
	@bash deploy/test.sh

# The benchmark harness (cmd/tributary-bench, not part of the tributary binary): real servers, every
# scenario, writes BENCHMARKS.md and BENCHMARKS.json (about 30 minutes). BENCH_FLAGS=-short for a
# smoke run, BENCH_FLAGS='-only query' for one scenario; BENCH_CPUPROFILE_DIR=dir for CPU profiles of
# the in-process sides.
bench:
	@bash deploy/bench.sh

build:
	$(GO) build -o bin/tributary ./cmd/tributary

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Longer fuzzing than the seed runs of make test: FUZZTIME per target.
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./schemas -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./schemas -run XXX -fuzz FuzzParseAttributesJSON -fuzztime $(FUZZTIME)
	$(GO) test ./query -run XXX -fuzz FuzzParseFilter -fuzztime $(FUZZTIME)

# Start or stop the real local servers by hand (for go test or the binaries outside make test).
servers:
	@bash deploy/clickhouse.sh start && bash deploy/kafka.sh start
stop:
	@bash deploy/kafka.sh stop; bash deploy/clickhouse.sh stop

clean: stop
	rm -rf bin .state
