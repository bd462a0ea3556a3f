package testenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the failure instead of ending the test.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Fatalf(format string, args ...any) { r.failure = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	f := func(name string, wait func(tb testing.TB, calls *int), wantCalls int, wantFailure string) {
		t.Helper()
		r := &recorder{TB: t}
		calls := 0
		wait(r, &calls)
		if wantCalls > 0 && calls != wantCalls {
			t.Errorf("%s: the condition was checked %d times, want %d", name, calls, wantCalls)
		}
		if !strings.Contains(r.failure, wantFailure) || (wantFailure == "") != (r.failure == "") {
			t.Errorf("%s: failure %q, want one containing %q", name, r.failure, wantFailure)
		}
	}
	f("true at the third check", func(tb testing.TB, calls *int) {
		Eventually(tb, "three calls", time.Minute, func() bool { *calls++; return *calls == 3 })
	}, 3, "")
	f("never true", func(tb testing.TB, calls *int) {
		Eventually(tb, "the impossible", 30*time.Millisecond, func() bool { *calls++; return false })
	}, 0, "gave up after 30ms waiting for the impossible")
	f("nil at the second check", func(tb testing.TB, calls *int) {
		EventuallyNil(tb, "two calls", time.Minute, func() error {
			if *calls++; *calls < 2 {
				return errors.New("one call")
			}
			return nil
		})
	}, 2, "")
	f("the last state is reported", func(tb testing.TB, calls *int) {
		EventuallyNil(tb, "ten records", 30*time.Millisecond, func() error {
			if *calls++; *calls == 1 {
				return errors.New("none stored")
			}
			return errors.New("3 of 10 stored")
		})
	}, 0, "gave up after 30ms waiting for ten records: 3 of 10 stored")
	f("never true while watched", func(tb testing.TB, calls *int) {
		Never(tb, "a miracle", 30*time.Millisecond, func() bool { *calls++; return false })
	}, 0, "")
	f("true while watched", func(tb testing.TB, calls *int) {
		Never(tb, "it happened", time.Minute, func() bool { *calls++; return *calls == 2 })
	}, 2, "it happened (watched for 1m0s)")
}
