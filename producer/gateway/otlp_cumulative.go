package gateway

import (
	"container/list"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// cumulative turns the points of cumulative OTLP streams (monotonic sums, histograms, summaries)
// into increases. It remembers each stream's last point in this gateway process, in an LRU of at
// most max streams. For a stream's point:
//
//   - the stream's first point is a baseline (nothing is stored), unless the stream started (its
//     start time) at or after the horizon: then everything it counted happened while this process
//     remembered all streams, and the whole value is the increase. The horizon is the process's
//     start, moved to now whenever a stream is dropped from the LRU (its next point must be a
//     baseline);
//   - a point whose start time differs from the last point's, or whose count (for a sum, its
//     value) went down, follows a reset or a restart: its whole value is the increase;
//   - a point not newer than the last one (a re-sent or reordered export) is skipped;
//   - otherwise the increase is the difference, value by value.
//
// A request's cumulative points are converted and handed to the producer under one lock (held
// from its first cumulative point until its records are in the producer's buffer), and the new
// state is kept only once the producer accepted them, so a refused request (503) leaves the state
// as it was and its retry counts the same increases. Streams must reach one gateway process (one
// OTLP client connection, or sticky load balancing): two processes seeing alternate points of one
// stream would each count its increases.
type cumulative struct {
	reqMu sync.Mutex // held by a request converting cumulative points, until it committed

	mu      sync.Mutex
	max     int
	horizon int64 // unix nanoseconds
	now     func() time.Time
	byKey   map[[16]byte]*list.Element
	lru     *list.List // of *stream, least recently seen first

	evictions prometheus.Counter
	baselines prometheus.Counter
	resets    prometheus.Counter
}

// stream is a cumulative stream's last point: its start, its time, a fingerprint of its layout
// (histogram bounds) and its values (a sum: the value; a histogram: count, sum, then each bucket's
// count; an exponential histogram: count, sum, zero count, then its positive and negative buckets'
// counts, in exp's layout; a summary: count, sum). A histogram's min and max (NaN when not sent)
// say whether the increase's extremes are exact.
type stream struct {
	key         [16]byte
	start, last uint64
	layout      uint64
	vals        []float64
	min, max    float64
	exp         *expLayout
}

// increase is what a cumulative point adds to its stream: the increases of its values, in the
// layout exp (exponential histograms; nil otherwise), measured from the point from (nil: the whole
// value is the increase).
type increase struct {
	vals []float64
	exp  *expLayout
	from *stream
}

func newCumulative(max int) *cumulative {
	return &cumulative{max: max, now: time.Now, horizon: time.Now().UnixNano(), byKey: map[[16]byte]*list.Element{}, lru: list.New(),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_otlp_cumulative_evictions_total",
			Help: "Cumulative OTLP streams dropped from memory because GATEWAY_OTLP_CUMULATIVE_STREAMS were remembered; their next point is a baseline.",
		}),
		baselines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_otlp_cumulative_baselines_total",
			Help: "First points of cumulative OTLP streams that started before this process (or before an eviction) remembered them: not stored, later points count from them.",
		}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_otlp_cumulative_resets_total",
			Help: "Points of cumulative OTLP streams after a reset or restart (new start time, or a lower count): their whole value counted as the increase.",
		}),
	}
}

func (c *cumulative) collectors() []prometheus.Collector {
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_gateway_otlp_cumulative_streams", Help: "Cumulative OTLP streams whose last point this process remembers.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(c.lru.Len())
	})
	return []prometheus.Collector{c.evictions, c.baselines, c.resets, streams}
}

// lookup returns the stream's remembered point, or nil.
func (c *cumulative) lookup(key [16]byte) *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		return e.Value.(*stream)
	}
	return nil
}

// commit keeps the new points of accepted streams, dropping the least recently seen beyond max.
func (c *cumulative) commit(updates []*stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range updates {
		if e, ok := c.byKey[s.key]; ok {
			e.Value = s
			c.lru.MoveToBack(e)
			continue
		}
		c.byKey[s.key] = c.lru.PushBack(s)
		for c.lru.Len() > c.max {
			old := c.lru.Front()
			delete(c.byKey, old.Value.(*stream).key)
			c.lru.Remove(old)
			c.evictions.Inc()
			c.horizon = c.now().UnixNano()
		}
	}
}

// delta returns the increase of point next over prev (nil: the stream's first point), and
// whether next is to be stored: false for a baseline or a point not newer than prev.
func (c *cumulative) delta(prev, next *stream) (increase, bool) {
	whole := increase{vals: next.vals, exp: next.exp}
	if prev == nil {
		c.mu.Lock()
		horizon := c.horizon
		c.mu.Unlock()
		if next.start != 0 && int64(next.start) >= horizon {
			return whole, true
		}
		c.baselines.Inc()
		return increase{}, false
	}
	if next.last <= prev.last {
		return increase{}, false
	}
	pv, nv, exp, aligned := prev.vals, next.vals, next.exp, true
	if prev.exp != nil && next.exp != nil {
		pv, nv, exp, aligned = alignExp(prev, next) // onto the coarser scale and the union of their ranges
	}
	if !aligned || next.start != prev.start || next.layout != prev.layout || len(nv) != len(pv) || nv[0] < pv[0] {
		c.resets.Inc()
		return whole, true
	}
	d := make([]float64, len(nv))
	for i, v := range nv {
		d[i] = v - pv[i]
		if i >= 2 && d[i] < 0 { // a bucket's count went down: the sender restarted
			c.resets.Inc()
			return whole, true
		}
	}
	return increase{vals: d, exp: exp, from: prev}, true
}
