// Package uicheck drives the query service's web UI in headless Chromium (Debian's chromium
// package) against a real ClickHouse with loaded data, and keeps a screenshot in artifacts/. It
// holds no production code.
package uicheck
