package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

// BenchmarkGateway: 100-record JSON batches from 4 concurrent clients, through the gateway and the
// SDK to the real broker (all on this machine), until Kafka acknowledged every record.
func BenchmarkGateway(b *testing.B) {
	const batches, perBatch, clients = 2000, 100, 4
	bodies := make([][]byte, 50)
	for i := range bodies {
		var buf bytes.Buffer
		buf.WriteString("[")
		for j := range perBatch {
			if j > 0 {
				buf.WriteString(",")
			}
			if j%4 == 0 {
				fmt.Fprintf(&buf, `{"kind":"event","type":"node_finished","name":"Transform Completed","trace_id":"t-%d-%d","attributes":{"node_id":"node_%d","rows":%d}}`, i, j/8, j%20, j)
			} else {
				fmt.Fprintf(&buf, `{"kind":"metric","name":"http_requests_total","value":1,"unit":"count","aggregation_type":"counter","attributes":{"endpoint":"/api/%d","status":200,"host":"host-%d"}}`, j%16, i)
			}
		}
		buf.WriteString("]")
		bodies[i] = buf.Bytes()
	}
	brokers := testenv.KafkaBrokers(b)
	var rates []float64
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, brokers, func(p *producer.Config, g *gateway.Config) { p.MaxBufferedRecords, g.MaxRecords = 200000, 1000 })
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= batches; i = next.Add(1) {
					req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewReader(bodies[i%int64(len(bodies))]))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil || resp.StatusCode != 202 {
						b.Errorf("%v %v", err, resp)
						return
					}
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		if err := f.p.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
		rates = append(rates, batches*perBatch/time.Since(start).Seconds())
	}
	s := slices.Clone(rates)
	slices.Sort(s)
	b.ReportMetric(s[len(s)/2], "records/s")
	b.ReportMetric(s[0], "records/s-min")
}
