// Package docscheck runs every code block of docs/*.md, so the guides cannot rot: SQL on the real
// ClickHouse server on data it loads, Python (deploy/docs/venv.sh's packages) against the real
// Kafka broker, Java compiled and run with Apache Avro; JSON and YAML blocks must parse. A block in a language without a runner
// fails TestEveryBlockHasARunner. It holds no production code.
package docscheck
