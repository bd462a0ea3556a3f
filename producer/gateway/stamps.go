package gateway

import (
	"container/list"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// stamps gives a record sent without a timestamp the same timestamp every time its id is sent, so a
// retried request is stored once (the tables dedupe on the timestamp and the id). An id that is a
// UUIDv7 carries its own time (milliseconds), used when within uuidSkew of now; any other id gets
// the time it was first seen, remembered for ttl in a cache of at most max ids, oldest dropped
// first. The horizon is therefore ttl, or less while the cache is full (horizon reports it); a
// re-send beyond it, to another gateway process or after a restart gets a new timestamp. Safe for
// concurrent use.
type stamps struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	ids   map[string]*list.Element
	order *list.List // of *stamp, oldest first

	filled    *prometheus.CounterVec // by source: uuidv7, cache_hit, cache_miss, no_id
	evictions prometheus.Counter     // ids dropped before their ttl because the cache was full
}

type stamp struct {
	key string
	ts  time.Time
}

// uuidSkew bounds how far from now a UUIDv7's own time may be and still be used.
const uuidSkew = 24 * time.Hour

func newStamps(ttl time.Duration, max int) *stamps {
	s := &stamps{ttl: ttl, max: max, now: time.Now, ids: map[string]*list.Element{}, order: list.New(),
		filled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_gateway_timestamps_filled_total",
			Help: "Records sent without a timestamp, by how it was filled: uuidv7 (the id's time; same on every gateway), " +
				"cache_hit (a re-send within the horizon: its first timestamp), cache_miss (an id this process does not hold: " +
				"first seen, or re-sent beyond the horizon; now), no_id (no id either: a new id and now, so a re-send is stored twice).",
		}, []string{"source"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_timestamp_cache_evictions_total",
			Help: "Ids dropped from the timestamp cache before their TTL because it was full; a re-send of one gets a new timestamp.",
		}),
	}
	for _, src := range []string{"uuidv7", "cache_hit", "cache_miss", "no_id"} {
		s.filled.WithLabelValues(src) // exported at 0 from the start
	}
	return s
}

// collectors are the cache's metrics: the counters, the ids it holds and its horizon.
func (s *stamps) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.filled, s.evictions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tributary_gateway_timestamp_cache_entries", Help: "Ids the timestamp cache holds (at most GATEWAY_TIMESTAMP_CACHE_ENTRIES).",
		}, func() float64 { return float64(s.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tributary_gateway_timestamp_cache_horizon_seconds",
			Help: "How long a re-sent id keeps its first timestamp now: GATEWAY_TIMESTAMP_CACHE_TTL, or the age of the oldest id while the cache is full.",
		}, func() float64 { return s.horizon().Seconds() }),
	}
}

func (s *stamps) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// horizon is how long an id sent now would keep its timestamp at the current rate of new ids: the
// ttl while the cache has room, else the age of its oldest id (the next to be dropped).
func (s *stamps) horizon() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.order.Len() < s.max {
		return s.ttl
	}
	return min(s.ttl, s.now().Sub(s.order.Front().Value.(*stamp).ts))
}

// timestamp returns the timestamp for a record of kind and id in tenant that has none. A record
// without an id gets the zero time (the producer gives it a new id and now).
func (s *stamps) timestamp(tenant, kind, id string) time.Time {
	if id == "" {
		s.filled.WithLabelValues("no_id").Inc()
		return time.Time{}
	}
	now := s.now()
	if u, err := uuid.Parse(id); err == nil && u.Version() == 7 {
		ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
		if ts := time.UnixMilli(ms).UTC(); ts.After(now.Add(-uuidSkew)) && ts.Before(now.Add(uuidSkew)) {
			s.filled.WithLabelValues("uuidv7").Inc()
			return ts
		}
	}
	key := tenant + "\x00" + kind + "\x00" + id
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil && now.Sub(e.Value.(*stamp).ts) >= s.ttl; e = s.order.Front() {
		delete(s.ids, e.Value.(*stamp).key)
		s.order.Remove(e)
	}
	if e, ok := s.ids[key]; ok {
		s.filled.WithLabelValues("cache_hit").Inc()
		return e.Value.(*stamp).ts
	}
	s.filled.WithLabelValues("cache_miss").Inc()
	if s.order.Len() >= s.max {
		e := s.order.Front()
		delete(s.ids, e.Value.(*stamp).key)
		s.order.Remove(e)
		s.evictions.Inc()
	}
	ts := now.UTC()
	s.ids[key] = s.order.PushBack(&stamp{key: key, ts: ts})
	return ts
}
