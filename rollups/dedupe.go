package rollups

import (
	"github.com/cespare/xxhash/v2"
)

// RecordID hashes a record's identity (tenant and record id) for Point.ID.
func RecordID(tenant, id string) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(id)
	return d.Sum64()
}

// recent remembers the ids of the last cap points counted, oldest forgotten first: a re-sent
// record (same tenant and id, a new Kafka offset) is counted once while its id is remembered. Each
// id costs about 40 bytes (a map entry and a ring slot).
type recent struct {
	ids  map[uint64]struct{}
	ring []uint64
	at   []int64 // when each ring slot was counted, Unix seconds, for the horizon
	next int
	full bool
}

func newRecent(capacity int) *recent {
	return &recent{ids: make(map[uint64]struct{}, capacity), ring: make([]uint64, capacity), at: make([]int64, capacity)}
}

func (r *recent) has(id uint64) bool {
	_, ok := r.ids[id]
	return ok
}

// add remembers id, counted at now (Unix seconds), forgetting the oldest id when full.
func (r *recent) add(id uint64, now int64) {
	if r.full {
		delete(r.ids, r.ring[r.next])
	}
	r.ring[r.next], r.at[r.next] = id, now
	r.ids[id] = struct{}{}
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
}

// oldest is when the oldest remembered id was counted (Unix seconds; 0 when empty).
func (r *recent) oldest() int64 {
	if r.full {
		return r.at[r.next]
	}
	if r.next == 0 {
		return 0
	}
	return r.at[0]
}
