package chaosproxy_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/internal/testenv/chaosproxy"
)

// afterInsert returns a policy giving fault to the chunk that follows an INSERT statement on its
// connection (the first chunk of the insert's data), and passing the rest.
func afterInsert(fault chaosproxy.Fault) chaosproxy.Policy {
	var mu sync.Mutex
	inInsert := map[int]bool{}
	return func(c *chaosproxy.Chunk) chaosproxy.Fault {
		mu.Lock()
		defer mu.Unlock()
		was := inInsert[c.Conn]
		inInsert[c.Conn] = bytes.Contains(c.Data, []byte("INSERT INTO"))
		if was {
			return fault
		}
		return chaosproxy.Pass
	}
}

func insert(ctx context.Context, conn driver.Conn, table string, n int) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (id)")
	if err != nil {
		return err
	}
	for i := range n {
		if err := b.Append(uint64(i)); err != nil {
			return err
		}
	}
	return b.Send()
}

// The faults mean what the consumer's chaos test takes them to mean, on the real ClickHouse: an
// insert cut after its data went upstream is stored though the client gets an error; one cut
// before, or stalled until the client's deadline, is not stored.
func TestFaultsOnClickHouseInserts(t *testing.T) {
	ch := testenv.ClickHouse(t)
	direct := testenv.OpenClickHouse(t, ch)
	ctx := context.Background()
	f := func(fault chaosproxy.Fault, timeout time.Duration, wantStored uint64) {
		t.Helper()
		table := ch.Database + "." + testenv.Unique("t")
		if err := direct.Exec(ctx, "CREATE TABLE "+table+" (id UInt64) ENGINE = MergeTree() ORDER BY id"); err != nil {
			t.Fatal(err)
		}
		p := chaosproxy.Start(t, chaosproxy.Config{Upstream: ch.Addr[0]})
		cfg := ch
		cfg.Addr = []string{p.Addr()}
		conn := testenv.OpenClickHouse(t, cfg)
		p.SetPolicy(afterInsert(fault))
		ictx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := insert(ictx, conn, table, 20000)
		if err == nil {
			t.Fatalf("%v: the insert succeeded", fault)
		}
		var ne net.Error
		if fault == chaosproxy.Stall && !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("stalled insert: %v, want a timeout at the deadline", err)
		}
		var n uint64
		if err := direct.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != wantStored {
			t.Fatalf("%v: %d rows stored, want %d (client saw: %v)", fault, n, wantStored, err)
		}
		if s := p.Stats(); s.Faults[fault] != 1 || (fault == chaosproxy.CutAfter) != (s.LostAnswers == 1) {
			t.Fatalf("%v: proxy stats %+v", fault, s)
		}
		// The pool recovers: the next insert, with faults off, goes through.
		p.SetPolicy(nil)
		if err := insert(ctx, conn, table, 10); err != nil {
			t.Fatalf("after %v: %v", fault, err)
		}
	}
	f(chaosproxy.CutAfter, 10*time.Second, 20000)
	f(chaosproxy.CutBefore, 10*time.Second, 0)
	f(chaosproxy.Stall, 500*time.Millisecond, 0)
}
