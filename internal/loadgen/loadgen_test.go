package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TRIBUTARY_LOADGEN_ATTR_SCALE=N: the same records with every attribute N times (the copies under
// <key>_2 ... <key>_N hold the same value), so N times the attribute bytes and the same series;
// 0 and one past the maximum are refused naming the setting.
func TestAttrScale(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	es1, ms1 := loadgen.NewFleet(10, 7).Batch(400, now)
	es4, ms4 := loadgen.NewFleet(10, 7).WithAttrScale(4).Batch(400, now)
	if len(es1) != len(es4) || len(ms1) != len(ms4) || len(es1) == 0 || len(ms1) == 0 {
		t.Fatalf("batches differ in shape: %d/%d events, %d/%d metrics", len(es1), len(es4), len(ms1), len(ms4))
	}
	check := func(what string, i int, a, b map[string]any) {
		if len(b) != 4*len(a) {
			t.Fatalf("%s %d: %d attributes at scale 4, %d at 1", what, i, len(b), len(a))
		}
		for k, v := range a {
			for _, key := range []string{k, k + "_2", k + "_3", k + "_4"} {
				if b[key] != v {
					t.Fatalf("%s %d: %s = %v, want %v", what, i, key, b[key], v)
				}
			}
		}
	}
	for i := range es1 {
		if es1[i].Name != es4[i].Name || es1[i].TraceID != es4[i].TraceID {
			t.Fatalf("event %d differs beyond its attributes", i)
		}
		check("event", i, es1[i].Attributes, es4[i].Attributes)
	}
	for i := range ms1 {
		if ms1[i].Name != ms4[i].Name || ms1[i].Value != ms4[i].Value {
			t.Fatalf("metric %d differs beyond its attributes", i)
		}
		check("metric", i, ms1[i].Attributes, ms4[i].Attributes)
	}
	base := loadgen.Config{Hosts: 1, Rate: 1, Duration: time.Second, Target: "sdk", Batch: 1}
	for _, n := range []int{1, loadgen.MaxAttrScale} {
		c := base
		c.AttrScale = n
		if err := c.Validate(); err != nil {
			t.Errorf("attr scale %d: %v", n, err)
		}
	}
	for _, n := range []int{0, loadgen.MaxAttrScale + 1} {
		c := base
		c.AttrScale = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "TRIBUTARY_LOADGEN_ATTR_SCALE") {
			t.Errorf("attr scale %d: %v", n, err)
		}
	}
}
