// Package faults holds Tributary's fault tests: a consumer process killed with SIGKILL mid-flow,
// ClickHouse stopped for 30 s under load, a broker restart under load, and ClickHouse answering at
// random through a chaos proxy (testenv/chaosproxy). They run real servers (private instances
// where a test stops one) and hold no production code.
package faults
