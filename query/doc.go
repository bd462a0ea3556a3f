// Package query is the query service: an HTTP JSON API over the raw events and metrics tables, and
// a Go client for it (QueryEvents, QueryMetrics, mirroring the spec's query_events / query_metrics).
//
// Every value a caller gives is bound as a query parameter; no caller text becomes SQL. A bad
// parameter is answered with HTTP 400 and a body naming it ({"error": ..., "parameter": "limit"});
// unknown parameters are refused, so a typo cannot silently widen a query. Each query is bounded by
// QUERY_TIMEOUT (ClickHouse's max_execution_time and the service's own deadline; 504 when exceeded)
// and by QUERY_MAX_LIMIT rows. Results read the tables with FINAL, so records replayed after a crash
// are counted once.
package query
