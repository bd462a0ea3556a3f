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
// first. Safe for concurrent use.
type stamps struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	ids   map[string]*list.Element
	order *list.List // of *stamp, oldest first

	filled    *prometheus.CounterVec // by source: uuidv7, cache_hit, cache_miss
	evictions prometheus.Counter     // ids dropped before their ttl because the cache was full
}

type stamp struct {
	key string
	ts  time.Time
}

// uuidSkew bounds how far from now a UUIDv7's own time may be and still be used.
const uuidSkew = 24 * time.Hour

func newStamps(ttl time.Duration, max int) *stamps {
	return &stamps{ttl: ttl, max: max, now: time.Now, ids: map[string]*list.Element{}, order: list.New(),
		filled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_gateway_timestamps_filled_total",
			Help: "Missing timestamps of records with an id, by source: uuidv7 (the id's time), cache_hit (a re-send), cache_miss (first seen).",
		}, []string{"source"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_timestamp_cache_evictions_total",
			Help: "Ids dropped from the timestamp cache before their TTL because it was full; a re-send of one gets a new timestamp.",
		}),
	}
}

// timestamp returns the timestamp for a record of kind and id in tenant that has none.
func (s *stamps) timestamp(tenant, kind, id string) time.Time {
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
