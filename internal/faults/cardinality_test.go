package faults

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// fleet is what a fleet of hosts sends in one minute: tenants × hosts × metric names distinct
// series, one point each, plus a second point for the first again series (in the same windows,
// after the rest, so that their windows have been shed and are loaded back from ClickHouse).
func fleet(tenants, hosts, names, again int, at time.Time) []schemas.Metric {
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	ts := make([]string, tenants)
	for i := range ts {
		ts[i] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("tenant", i))).String()
	}
	n := tenants * hosts * names
	out := make([]schemas.Metric, 0, n+again)
	for i := range n + again {
		s := i % n
		tenant, host, name := s/(hosts*names), (s/names)%hosts, s%names
		out = append(out, schemas.Metric{
			MetricID: uuid.Must(uuid.NewV7()).String(), Name: fmt.Sprintf("fleet_metric_%02d", name), Unit: "ms",
			AggregationType: types[name%3], Value: float64((i*7919)%10007) / 8,
			Timestamp:  at.Add(time.Duration(i/(n/40+1)) * time.Second), // 40 s for the first pass
			Attributes: map[string]any{"host": fmt.Sprintf("host-%05d.fleet.example", host), "region": fmt.Sprintf("r%d", host%7)},
			Source:     schemas.Source{Tenant: ts[tenant]},
		})
	}
	return out
}

// CardinalityBoundMiB is the consumer's peak RSS with its default settings at a million active
// series: MemoryBoundMiB plus the state that grows with cardinality up to its settings' caps (held
// windows and their series, remembered ids of re-sent records, known and shed series), every one at
// its cap here. docs/operations.md lists the parts.
const CardinalityBoundMiB = 896

// A million distinct series (1,000 tenants with 10 hosts × 100 metrics each: under the default
// cap of new series per tenant and minute) through the consumer binary with its default settings:
// nothing wedges, every raw row is stored once, the rollups equal a brute-force computation per
// series and window (count, sum, min, max, last exact), and the peak RSS stays within
// CardinalityBoundMiB. The consumer holds at most ROLLUP_MAX_WINDOWS (200,000) windows, so most of
// the 2,000,000 windows are shed to ClickHouse, and the 100,000 series that get a second point load
// theirs back.
func TestMillionSeries(t *testing.T) {
	t.Parallel() // the longest test here: overlap it with the others (its own topics and database)
	const (
		tenants, hosts, names = 1000, 10, 100 // under the default cap of new series per tenant and minute
		again                 = 100000
	)
	brokers := testenv.KafkaBrokers(t)
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	ch := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ch)
	ms := fleet(tenants, hosts, names, again, time.Date(2025, 3, 1, 12, 0, 10, 0, time.UTC))

	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(200000))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(ms); i += 100000 {
		recs := make([]*kgo.Record, 0, 100000)
		for j := i; j < min(i+100000, len(ms)); j++ {
			v, err := codec.AppendMetric(nil, &ms[j])
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: k.MetricsTopic, Key: producer.SeriesKey(&ms[j]), Value: v})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	group := testenv.Unique("g")
	cmd := startConsumer(t, k, ch, "TRIBUTARY_CONSUMER_GROUP="+group)
	start := time.Now()
	// Polling the consumer group's lag, not the tables: counting a million distinct ids every
	// quarter second would load ClickHouse as much as the consumer does.
	waitLagZero(t, brokers, group, 8*time.Minute, k.MetricsTopic)
	elapsed := time.Since(start)
	hwm := peakRSSMiB(t, cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consumer exited with %v", err)
	}
	t.Logf("%d series, %d points stored in %v (%.0f points/s), peak RSS %d MiB (bound %d MiB)",
		tenants*hosts*names, len(ms), elapsed.Round(time.Millisecond), float64(len(ms))/elapsed.Seconds(), hwm, CardinalityBoundMiB)

	if raw := count(t, conn, "SELECT count() FROM "+ch.Database+".metrics FINAL"); raw != uint64(len(ms)) {
		t.Fatalf("raw metrics: %d rows, want %d", raw, len(ms))
	}
	testenv.CheckRollups(t, testenv.ReadRollups(t, conn, ch.Database), ms, []int64{60, 3600})
	if hwm > CardinalityBoundMiB {
		t.Fatalf("peak RSS %d MiB exceeds the stated bound of %d MiB", hwm, CardinalityBoundMiB)
	}
}
