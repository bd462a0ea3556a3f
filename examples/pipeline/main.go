// Command pipeline builds Tributary's parts from its exported packages only, as a program outside
// the module would: it creates the ClickHouse schema and the Kafka topics, runs a consumer worker
// and the query service in this process, records an event through the producer SDK and reads it
// back through the query client.
//
//	go run ./pipeline -brokers 127.0.0.1:19092 -clickhouse 127.0.0.1:19000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "Kafka seed brokers, comma-separated")
	clickhouse := flag.String("clickhouse", "127.0.0.1:19000", "ClickHouse native address")
	database := flag.String("database", "tributary_example", "ClickHouse database (created if missing)")
	topics := flag.String("topics", "tributary-example", "prefix of the four topics (created if missing)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	k := kafka.DefaultConfig()
	k.Brokers = strings.Split(*brokers, ",")
	k.EventsTopic, k.MetricsTopic, k.RollupsTopic, k.DLQTopic = *topics+".events", *topics+".metrics", *topics+".rollups", *topics+".dlq"
	k.TopicPartitions = 2
	ch := chdb.DefaultConfig()
	ch.Addr, ch.Database = []string{*clickhouse}, *database
	if err := run(ctx, k, ch, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, k kafka.Config, ch chdb.Config, log *slog.Logger) error {
	if err := migrate(ctx, k, ch); err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, ch, true)
	if err != nil {
		return err
	}
	defer conn.Close()

	// The consumer worker: Kafka -> ClickHouse.
	ccfg := consumer.DefaultConfig()
	ccfg.Kafka, ccfg.ClickHouse, ccfg.Group, ccfg.BatchInterval = k, ch, k.EventsTopic+".example", 100*time.Millisecond
	store, err := consumer.NewClickHouseStore(conn, ch.Database)
	if err != nil {
		return err
	}
	w, err := consumer.New(ccfg, store, log)
	if err != nil {
		return err
	}
	// The query service, and a client of it.
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.Listen = ch, "127.0.0.1:0"
	qs, err := query.New(qcfg, conn, log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	ready := make(chan string, 1)
	go func() { done <- w.Run(runCtx) }()
	go func() { done <- qs.Run(runCtx, ready) }()
	defer func() { stop(); <-done; <-done }()
	var client *query.Client
	select {
	case addr := <-ready:
		client = query.NewClient("http://"+addr, nil)
	case err := <-done:
		return fmt.Errorf("before the query service listened: %v", err)
	}

	// The producer SDK.
	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service = k, "example"
	p, err := producer.New(pcfg)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("example-%d", time.Now().UnixNano())
	err = p.RecordEvent(ctx, producer.Event{Type: producer.EventCheckpoint, Name: name, Attributes: map[string]any{"rows": 1000}})
	if cerr := p.Close(ctx); err == nil {
		err = cerr // Close flushes: Kafka has the event once it returns
	}
	if err != nil {
		return err
	}

	for {
		events, _, err := client.QueryEvents(ctx, query.Filter{Name: name, Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Hour)})
		if err != nil {
			return err
		}
		if len(events) == 1 {
			fmt.Printf("recorded %s %q through the producer; the query service returns it with attributes %v\n",
				events[0].Type, events[0].Name, events[0].Attributes)
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the event did not reach the query service in time")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// migrate creates the topics and the database with its tables, if missing.
func migrate(ctx context.Context, k kafka.Config, ch chdb.Config) error {
	if err := kafka.EnsureTopics(ctx, k); err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, ch, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = chdb.Migrate(ctx, conn, ch.Database)
	return err
}
