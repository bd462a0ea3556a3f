package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

func embedded(t *testing.T) (*producer.Client, func() int64) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "ev", "me"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := producer.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic = cluster.ListenAddrs(), "ev", "me"
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() int64 {
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		cl, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
		defer cl.Close()
		ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "ev", "me")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	return p, stored
}

func TestRunThroughSDKAndGateway(t *testing.T) {
	cfg := loadgen.Config{Hosts: 20, Rate: 4000, Duration: time.Second, Batch: 100, Seed: 3, Target: "sdk"}

	p, stored := embedded(t)
	reports := 0
	got := loadgen.Run(context.Background(), cfg, loadgen.SDKSink{Client: p}, func(loadgen.Progress) { reports++ })
	if got.Errors != 0 || got.Sent == 0 || got.Sent%100 != 0 {
		t.Fatalf("sdk run %+v", got)
	}
	if n := stored(); n != int64(got.Sent) {
		t.Fatalf("loadgen reported %d sent, the topics hold %d", got.Sent, n)
	}

	p2, stored2 := embedded(t)
	g, err := gateway.New(gateway.Config{Listen: "x", Tokens: map[string]string{"load-token": "fleet"}, MaxBodyBytes: 8 << 20,
		MaxRecords: 1000, BufferWait: time.Second, FlushTimeout: time.Second}, p2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	cfg.Target = "gateway"
	got = loadgen.Run(context.Background(), cfg, loadgen.GatewaySink{URL: srv.URL + "/v1/ingest", Token: "load-token", HTTP: http.DefaultClient}, nil)
	if got.Errors != 0 || got.Sent == 0 {
		t.Fatalf("gateway run %+v", got)
	}
	if n := stored2(); n != int64(got.Sent) {
		t.Fatalf("loadgen reported %d sent through the gateway, the topics hold %d", got.Sent, n)
	}
	bad := loadgen.Run(context.Background(), cfg, loadgen.GatewaySink{URL: srv.URL + "/v1/ingest", Token: "wrong-token", HTTP: http.DefaultClient}, nil)
	if bad.Errors == 0 || bad.Sent != 0 || bad.LastError == "" {
		t.Fatalf("a refused token must count errors: %+v", bad)
	}
}
