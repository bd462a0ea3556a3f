// Package faults holds Tributary's fault tests: a consumer process killed with SIGKILL mid-flow,
// ClickHouse stopped under load while half the load is sent into the outage, a broker restart
// under load, and ClickHouse answering at random through a chaos proxy (testenv/chaosproxy). Each
// outage test shows that the load overlapped the outage. They run real servers (private instances
// where a test stops one) and hold no production code.
package faults
