// Package pipeline runs the consumer worker and the query service together in one process, for the
// demo and the end-to-end tests. Production runs them as separate processes (cmd/tributary).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/observe"
	"github.com/tributary/tributary/query"
)

// Stack is a running consumer worker and query service.
type Stack struct {
	Worker   *consumer.Worker
	QueryURL string               // http://host:port of the query service
	Metrics  *prometheus.Registry // the worker's metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []driver.Conn
	mu     sync.Mutex
	errs   []error
}

// Start opens ClickHouse (the consumer with its writer account, the query service with its own,
// normally read-only), then starts both; it returns once the query service listens. Stop ends them.
func Start(ctx context.Context, ccfg consumer.Config, qcfg query.Config, log *slog.Logger) (*Stack, error) {
	wconn, err := chdb.Open(ctx, ccfg.ClickHouse, true)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	rconn, err := chdb.Open(ctx, qcfg.ClickHouse, true)
	if err != nil {
		wconn.Close()
		return nil, fmt.Errorf("query service: %w", err)
	}
	s := &Stack{conns: []driver.Conn{wconn, rconn}}
	store, err := consumer.NewClickHouseStore(wconn, ccfg.ClickHouse.Database)
	if err == nil {
		store.ReadReplicasAs(ccfg.ClickHouse.User, ccfg.ClickHouse.Password)
		s.Worker, err = consumer.New(ccfg, store, log.With("component", "consumer"))
	}
	if err == nil {
		s.Metrics = observe.NewRegistry()
		err = s.Worker.Register(s.Metrics)
	}
	var qs *query.Server
	if err == nil {
		qs, err = query.New(qcfg, rconn, log.With("component", "query"))
	}
	if err != nil {
		s.closeConns()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan string, 1)
	s.goRun(func() error { return s.Worker.Run(runCtx) })
	s.goRun(func() error { return qs.Run(runCtx, ready) })
	select {
	case addr := <-ready:
		s.QueryURL = "http://" + addr
		return s, nil
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), s.Stop())
	}
}

func (s *Stack) goRun(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	}()
}

// Stop ends the worker (which writes and commits its last batch) and the query service, waits for
// both, closes the connections and returns their errors.
func (s *Stack) Stop() error {
	s.cancel()
	s.wg.Wait()
	s.closeConns()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

func (s *Stack) closeConns() {
	for _, c := range s.conns {
		c.Close()
	}
}
