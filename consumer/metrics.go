package consumer

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// instruments are the worker's Prometheus histograms and lag gauges. The counters come from Stats
// through a collector, so they are never counted twice.
type instruments struct {
	batchRecords  prometheus.Histogram
	insertSeconds *prometheus.HistogramVec

	lagMu sync.Mutex
	lag   map[partition]int64
}

func newInstruments() *instruments {
	return &instruments{
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tributary_consumer_batch_records", Help: "Kafka records per stored batch.",
			Buckets: prometheus.ExponentialBuckets(10, 4, 8),
		}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tributary_consumer_store_seconds", Help: "Time to store a batch, by stage (raw, rollups, outbox, commit).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"stage"}),
		lag: map[partition]int64{},
	}
}

func (in *instruments) observeStage(stage string, start time.Time) {
	in.insertSeconds.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}

// noteLag records, per partition, how far the last polled record is behind the high watermark.
func (in *instruments) noteLag(p kgo.FetchTopicPartition) {
	if len(p.Records) == 0 {
		return
	}
	last := p.Records[len(p.Records)-1].Offset
	in.lagMu.Lock()
	in.lag[partition{p.Topic, p.Partition}] = max(0, p.HighWatermark-last-1)
	in.lagMu.Unlock()
}

type statsCollector struct {
	w    *Worker
	desc map[string]*prometheus.Desc
}

var counterHelp = map[string]string{
	"tributary_consumer_records_consumed_total": "Kafka records polled.",
	"tributary_consumer_records_written_total":  "Events and metrics stored in ClickHouse.",
	"tributary_consumer_dead_letters_total":     "Records that did not decode or validate, sent to the dead-letter topic.",
	"tributary_consumer_batches_total":          "Batches stored and committed.",
	"tributary_consumer_batch_retries_total":    "Failed attempts to store a batch (retried).",
	"tributary_consumer_commits_total":          "Successful offset commits.",
	"tributary_rollup_windows_written_total":    "Rollup window rows written.",
	"tributary_rollup_windows_published_total":  "Rollup windows published on the rollups topic.",
	"tributary_rollup_late_points_total":        "Metric points whose minute window had already closed (still counted).",
	"tributary_rollup_replayed_points_total":    "Point contributions skipped because their window had counted them already.",
	"tributary_rollup_windows_closed_total":     "Rollup windows closed by the watermark.",
	"tributary_rollup_windows_open":             "Rollup windows held in memory.",
	"tributary_consumer_lag":                    "Records between the last polled record and the high watermark, per partition.",
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.Stats()
	for name, v := range map[string]uint64{
		"tributary_consumer_records_consumed_total": s.Consumed, "tributary_consumer_records_written_total": s.Written,
		"tributary_consumer_dead_letters_total": s.Poison, "tributary_consumer_batches_total": s.Batches,
		"tributary_consumer_batch_retries_total": s.Retries, "tributary_consumer_commits_total": s.Commits,
		"tributary_rollup_windows_written_total": s.Windows, "tributary_rollup_windows_published_total": s.Published,
		"tributary_rollup_late_points_total": s.LatePoints, "tributary_rollup_replayed_points_total": s.Replayed,
		"tributary_rollup_windows_closed_total": s.ClosedWindow,
	} {
		ch <- prometheus.MustNewConstMetric(c.desc[name], prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(c.desc["tributary_rollup_windows_open"], prometheus.GaugeValue, float64(s.OpenWindows))
	in := c.w.inst
	in.lagMu.Lock()
	defer in.lagMu.Unlock()
	for p, lag := range in.lag {
		ch <- prometheus.MustNewConstMetric(c.desc["tributary_consumer_lag"], prometheus.GaugeValue, float64(lag), p.topic, strconv.Itoa(int(p.id)))
	}
}

// Register adds the worker's metrics, and its Kafka client's (kprom, prefix tributary_kafka), to
// reg. Call it before Run.
func (w *Worker) Register(reg prometheus.Registerer) error {
	c := &statsCollector{w: w, desc: map[string]*prometheus.Desc{}}
	for name, help := range counterHelp {
		var labels []string
		if name == "tributary_consumer_lag" {
			labels = []string{"topic", "partition"}
		}
		c.desc[name] = prometheus.NewDesc(name, help, labels, nil)
	}
	for _, col := range []prometheus.Collector{c, w.inst.batchRecords, w.inst.insertSeconds} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	w.opts = append(w.opts, kgo.WithHooks(kprom.NewMetrics("tributary_kafka", kprom.Registerer(reg))))
	return nil
}
