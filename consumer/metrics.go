package consumer

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/tributary/tributary/internal/observe"
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

// dropLag forgets the lag of partitions that moved away, so summed lag counts each partition once.
func (in *instruments) dropLag(m map[string][]int32) {
	in.lagMu.Lock()
	defer in.lagMu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			delete(in.lag, partition{topic, p})
		}
	}
}

// Register adds the worker's metrics, and its Kafka client's (kprom, prefix tributary_kafka), to
// reg. Call it before Run.
func (w *Worker) Register(reg prometheus.Registerer) error {
	stats := observe.NewStatsCollector([]observe.Stat{
		{Name: "tributary_consumer_records_consumed_total", Help: "Kafka records polled."},
		{Name: "tributary_consumer_records_written_total", Help: "Events and metrics stored in ClickHouse."},
		{Name: "tributary_consumer_dead_letters_total", Help: "Records that did not decode or validate, sent to the dead-letter topic."},
		{Name: "tributary_consumer_batches_total", Help: "Batches stored and committed."},
		{Name: "tributary_consumer_batch_retries_total", Help: "Failed attempts to store a batch (retried)."},
		{Name: "tributary_consumer_commits_total", Help: "Successful offset commits."},
		{Name: "tributary_rollup_windows_written_total", Help: "Rollup window rows written."},
		{Name: "tributary_rollup_windows_published_total", Help: "Rollup windows published on the rollups topic."},
		{Name: "tributary_rollup_late_points_total", Help: "Metric points whose minute window had already closed (still counted)."},
		{Name: "tributary_rollup_replayed_points_total", Help: "Point contributions skipped because their window had counted them already."},
		{Name: "tributary_rollup_windows_closed_total", Help: "Rollup windows closed by the watermark."},
		{Name: "tributary_rollup_windows_open", Help: "Rollup windows held in memory.", Gauge: true},
		{Name: "tributary_consumer_refused_rows_total", Help: "Decoded records ClickHouse refused for their content, sent to the dead-letter topic."},
		{Name: "tributary_rollup_skipped_points_total", Help: "Points stored raw but left out of the rollups because storing their rollups failed permanently."},
		{Name: "tributary_rollup_resent_points_total", Help: "Metric points not counted again by the rollups because their id was counted already (re-sent records)."},
		{Name: "tributary_rollup_dedupe_horizon_seconds", Help: "How long ago the oldest metric id the rollups remember was counted: a re-send within it counts once.", Gauge: true},
		{Name: "tributary_rollup_new_series_total", Help: "Series the label-cardinality guard admitted as new against a tenant's minute budget."},
		{Name: "tributary_rollup_overflow_points_total", Help: "Metric points rolled up under their metric's overflow series because their series was new past the tenant's cap (stored raw as usual)."},
		{Name: "tributary_rollup_capped_minutes_total", Help: "Times a tenant reached the new-series cap in a minute (each logged)."},
		{Name: "tributary_rollup_known_series", Help: "Series ids the label-cardinality guard remembers as not new.", Gauge: true},
		{Name: "tributary_consumer_outbox_dropped_total", Help: "Dead-letter or rollup records Kafka refused even without their value (dropped, logged)."},
		{Name: "tributary_consumer_lag", Help: "Records between the last polled record and the high watermark, per partition.",
			Gauge: true, Labels: []string{"topic", "partition"}},
	}, w.collect)
	for _, col := range []prometheus.Collector{stats, w.inst.batchRecords, w.inst.insertSeconds} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	w.opts = append(w.opts, kgo.WithHooks(kprom.NewMetrics("tributary_kafka", kprom.Registerer(reg))))
	return nil
}

func (w *Worker) collect(emit func(string, float64, ...string)) {
	s := w.Stats()
	for name, v := range map[string]uint64{
		"tributary_consumer_records_consumed_total": s.Consumed, "tributary_consumer_records_written_total": s.Written,
		"tributary_consumer_dead_letters_total": s.Poison, "tributary_consumer_batches_total": s.Batches,
		"tributary_consumer_batch_retries_total": s.Retries, "tributary_consumer_commits_total": s.Commits,
		"tributary_rollup_windows_written_total": s.Windows, "tributary_rollup_windows_published_total": s.Published,
		"tributary_rollup_late_points_total": s.LatePoints, "tributary_rollup_replayed_points_total": s.Replayed,
		"tributary_rollup_windows_closed_total": s.ClosedWindow, "tributary_rollup_windows_open": s.OpenWindows,
		"tributary_consumer_refused_rows_total": s.Refused, "tributary_rollup_skipped_points_total": s.RollupSkip,
		"tributary_consumer_outbox_dropped_total": s.OutboxDrop, "tributary_rollup_resent_points_total": s.Resent,
		"tributary_rollup_new_series_total": s.NewSeries, "tributary_rollup_overflow_points_total": s.OverflowPoints,
		"tributary_rollup_capped_minutes_total": s.CappedMinutes, "tributary_rollup_known_series": s.KnownSeries,
	} {
		emit(name, float64(v))
	}
	emit("tributary_rollup_dedupe_horizon_seconds", s.DedupeHorizon.Seconds())
	w.inst.lagMu.Lock()
	defer w.inst.lagMu.Unlock()
	for p, lag := range w.inst.lag {
		emit("tributary_consumer_lag", float64(lag), p.topic, strconv.Itoa(int(p.id)))
	}
}
