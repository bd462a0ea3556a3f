package consumertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
)

// Run runs a consumer worker on cfg's Kafka topics and ClickHouse database, logging to log, until
// the test ends; the test fails if the worker cannot start or stops with an error.
func Run(t testing.TB, cfg consumer.Config, log *slog.Logger) *consumer.Worker {
	t.Helper()
	conn, err := chdb.Open(context.Background(), cfg.ClickHouse, true)
	if err != nil {
		t.Fatal(err)
	}
	store, err := consumer.NewClickHouseStore(conn, cfg.ClickHouse.Database)
	if err != nil {
		t.Fatal(err)
	}
	store.ReadReplicasAs(cfg.ClickHouse.User, cfg.ClickHouse.Password)
	w, err := consumer.New(cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		conn.Close()
	})
	return w
}
