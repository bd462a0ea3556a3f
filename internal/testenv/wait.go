package testenv

import (
	"errors"
	"testing"
	"time"
)

// maxPause is the longest pause between two checks of a condition: short enough that a test ends
// soon after its condition holds, long enough that a costly check (a query over a table) is not run
// in a tight loop.
const maxPause = 250 * time.Millisecond

var errNotYet = errors.New("not yet")

// Eventually checks cond until it returns true and fails the test, saying it gave up waiting for
// what, if timeout passes first. It is how tests synchronise with work that happens elsewhere (a
// worker, a child process, a server): never a sleep. Checks come quickly at first, then every
// quarter second; cond runs on the caller's goroutine and may call t.Fatal.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	EventuallyNil(t, what, timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// EventuallyNil is Eventually for a check that says what is still missing: check returns nil once
// the condition holds, and otherwise an error describing the state ("3 of 10 records stored"),
// the last of which the failure reports.
func EventuallyNil(t testing.TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, maxPause) {
		err := check()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			if err == errNotYet {
				t.Fatalf("gave up after %v waiting for %s", timeout, what)
			} else {
				t.Fatalf("gave up after %v waiting for %s: %v", timeout, what, err)
			}
			return
		}
		time.Sleep(min(pause, left))
	}
}

// Never checks cond throughout window and fails the test, naming what happened, if cond becomes
// true: for a property that only watching can show (the new group member consumes nothing while
// the old owner's batch is in flight). Wait with Eventually first until the thing watched is under
// way, so that the watch is not vacuous, and make window longer than the thing watched takes to go
// wrong.
func Never(t testing.TB, what string, window time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(window)
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, maxPause) {
		if cond() {
			t.Fatalf("%s (watched for %v)", what, window)
			return
		}
		left := time.Until(end)
		if left <= 0 {
			return
		}
		time.Sleep(min(pause, left))
	}
}
