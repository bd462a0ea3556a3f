// Package chdbcheck proves that every statement Tributary sends runs on current ClickHouse releases
// as well as on 18.16, and answers the same. It holds no production code.
//
// No current ClickHouse server can be installed or started on this project's machines, but chdb
// (PyPI) is the ClickHouse engine as a Python module: deploy/chdb.sh installs one venv per release
// (chdb 3.7.2 = ClickHouse 25.8, the LTS that docker-compose.yml runs; chdb-core 26.9.0 = 26.9,
// the newest), and the test checks that each engine reports its release.
//
// TestEveryStatementOnCurrentClickHouse first runs the project's own code paths on the real 18.16
// server through a capturing connection: migrate (chdb with schemas/ddl), the consumer's
// inserts of events, metrics and rollup windows (arrays and sketches included) and its rollup reads
// (LoadWindows, and the LatestWindows statement), every query the query service builds (events,
// traces, attribute filters, metrics, event counts, aggregates from raw rows and from rollups with
// stored and merged percentiles, tenant-scoped or not), retention, the SQL blocks of docs/ (the
// analysts' guide) and the Grafana dashboard's panels. The connection is clickhouse-go's own, so
// parameters are bound as clickhouse-go binds them: the statement recorded is the text
// clickhouse-go logs as it sends it (its Logger's "sending query"), an insert's rows are the block
// the batch sends, and a query's answer is what the code scanned. The statements, 18.16's answers
// and each release's are kept in artifacts/chdbcheck/.
//
// It then replays the statements in order on each chdb release (replay.py, one fresh session
// each) and compares: a statement that fails on any release fails the test, naming the release and
// the statement; a query whose rows differ from 18.16's (count, or a value beyond 1e-9 relative
// for floats; rows compared in order, or as a multiset where only their order differs) fails too.
// One column kind is not compared: any(...) in a row whose count() is not 1 (the query service's
// rollup cells of several window rows), since any() of several rows may pick any of them, and the
// service reads those columns only in cells of one row. Settings sent beside a statement (the
// query service's max_execution_time) are not replayed.
//
// External data: LoadWindows sends its series ids as the external table _series, and the query
// service's eventsByKey its page keys as page_refs (clickhouse-go's WithExternalTable). ClickHouse
// makes external data a temporary table of the query; chdb has no external data, so the replay
// creates a temporary table of the same name and structure holding the same rows (read from the
// query's context as clickhouse-go would send them) before the statement and drops it after.
package chdbcheck
