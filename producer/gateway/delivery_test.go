package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
	"github.com/tributary/tributary/schemas"
)

// A record Kafka could never take is refused with 413 naming its index and the limit, and nothing
// of the request is accepted.
func TestRecordOverMaxRecordBytesIs413(t *testing.T) {
	f := newFixture(t, nil, func(p *producer.Config, _ *gateway.Config) { p.MaxRecordBytes = 2048 })
	body := `[{"kind":"event","type":"t","name":"ok"},{"kind":"event","type":"t","name":"n","attributes":{"a":"` + strings.Repeat("x", 3000) + `"}}]`
	r := post(t, f.url, token, "application/json", "", []byte(body))
	msg, _ := r.body["error"].(string)
	if r.status != 413 || r.body["index"] != 1.0 || !strings.Contains(msg, "at most 2048") || !strings.Contains(msg, "TRIBUTARY_MAX_RECORD_BYTES") {
		t.Fatalf("HTTP %d %v, want 413 for record 1 naming the limit", r.status, r.body)
	}
	if s := f.p.Stats(); s.Accepted != 0 {
		t.Fatalf("accepted %d records of a refused request", s.Accepted)
	}
}

// ?wait=ack reports the request's own records: a request whose record Kafka refuses (the metrics
// topic has max.message.bytes=1024 on the real broker) gets 502, a concurrent request of good
// records gets 202, and a later good request is not blamed for the earlier failure.
func TestWaitAckReportsOnlyTheRequestsRecords(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	small := smallTopic(t, brokers)
	f := newFixture(t, brokers, func(p *producer.Config, _ *gateway.Config) { p.Kafka.MetricsTopic = small })
	blob := make([]byte, 4000)
	_, _ = rand.Read(blob)
	bad := `[{"kind":"metric","name":"m","value":1,"aggregation_type":"gauge","attributes":{"blob":"` + hex.EncodeToString(blob) + `"}}]`
	good := `[{"kind":"event","type":"t","name":"a"},{"kind":"event","type":"t","name":"b"}]`
	var wg sync.WaitGroup
	var badReply, goodReply reply
	wg.Add(2)
	go func() {
		defer wg.Done()
		badReply = post(t, f.url+"?wait=ack", token, "application/json", "", []byte(bad))
	}()
	go func() {
		defer wg.Done()
		goodReply = post(t, f.url+"?wait=ack", token, "application/json", "", []byte(good))
	}()
	wg.Wait()
	if goodReply.status != 202 || goodReply.body["accepted"] != 2.0 {
		t.Errorf("good request: HTTP %d %v, want 202", goodReply.status, goodReply.body)
	}
	if msg, _ := badReply.body["error"].(string); badReply.status != 502 || !strings.Contains(msg, "MESSAGE_TOO_LARGE") {
		t.Errorf("refused request: HTTP %d %v, want 502 naming MESSAGE_TOO_LARGE", badReply.status, badReply.body)
	}
	if r := post(t, f.url+"?wait=ack", token, "application/json", "", []byte(good)); r.status != 202 {
		t.Errorf("a later good request: HTTP %d %v, want 202", r.status, r.body)
	}
}

// smallTopic creates a topic on the real broker whose max.message.bytes is 1024, so a batch bigger
// than that (a record with a few KiB of incompressible attributes) is refused with
// MESSAGE_TOO_LARGE while small records are delivered.
func smallTopic(t *testing.T, brokers []string) string {
	t.Helper()
	limit := "1024"
	return testenv.TopicsWithConfig(t, brokers, 1, map[string]*string{"max.message.bytes": &limit}, "small")[0]
}

// The same body without timestamps, sent twice (a retry), gives every record with an id the same
// timestamp both times, read back from the real broker: a UUIDv7 id its own time, others the
// first send's. A record without an id gets a new one each time (stored twice). The metrics count
// each way a timestamp was filled.
func TestRetryWithoutTimestampsKeepsThem(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	f := newFixture(t, brokers, nil)
	v7 := producer.NewID()
	body := `{"events":[{"event_id":"` + v7 + `","type":"t","name":"a"},{"event_id":"host-7-seq-42","type":"t","name":"b"},{"type":"t","name":"no-id"}],
	 "metrics":[{"metric_id":"host-7-m-1","name":"m","value":1,"aggregation_type":"gauge"}]}`
	for i := range 2 {
		if r := post(t, f.url+"?wait=ack", token, "application/json", "", []byte(body)); r.status != 202 {
			t.Fatalf("send %d: HTTP %d %v", i, r.status, r.body)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(f.topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, _ := schemas.NewCodec()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string][]time.Time{}
	var noID []string
	for n := 0; n < 8 && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			if r.Topic == f.topics[0] {
				e, _ := codec.DecodeEvent(r.Value)
				seen[e.EventID] = append(seen[e.EventID], e.Timestamp)
				if e.Name == "no-id" {
					noID = append(noID, e.EventID)
				}
			} else {
				m, _ := codec.DecodeMetric(r.Value)
				seen[m.MetricID] = append(seen[m.MetricID], m.Timestamp)
			}
		})
	}
	for _, id := range []string{v7, "host-7-seq-42", "host-7-m-1"} {
		ts := seen[id]
		if len(ts) != 2 || !ts[0].Equal(ts[1]) {
			t.Errorf("%s: timestamps %v, want the same one twice", id, ts)
		}
	}
	u := uuid.MustParse(v7)
	sec, nsec := u.Time().UnixTime()
	if got := seen[v7]; len(got) == 0 || !got[0].Equal(time.Unix(sec, nsec)) {
		t.Errorf("UUIDv7 event: %v, want its id's time %v", got, time.Unix(sec, nsec))
	}
	if len(noID) != 2 || noID[0] == noID[1] {
		t.Errorf("the record without an id, sent twice: ids %v, want two different ones", noID)
	}
	text := metricsText(t, f.h)
	for _, want := range []string{`source="uuidv7"} 2`, `source="cache_miss"} 2`, `source="cache_hit"} 2`, `source="no_id"} 2`,
		"tributary_gateway_timestamp_cache_entries 2", "tributary_gateway_timestamp_cache_horizon_seconds 600",
		"tributary_gateway_timestamp_cache_evictions_total 0"} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks the line ending %q", want)
		}
	}
}
