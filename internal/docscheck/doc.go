// Package docscheck runs the SQL of docs/analysts.md against the real ClickHouse server on data it
// loads, so the analysts' guide cannot rot. It holds no production code.
package docscheck
