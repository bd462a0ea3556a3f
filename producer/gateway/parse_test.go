package gateway

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseBody(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"t","name":"n","attributes":{"a":[1,2.5,{"b":null}]}}],"metrics":[{"name":"m","value":1,"aggregation_type":"gauge","timestamp":1.5}]}`), false)
	f.Add([]byte("{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\"}\n{\"kind\":\"metric\",\"name\":\"m\",\"value\":2}\n"), true)
	f.Add([]byte(`[{"kind":"event","timestamp":"2025-01-15T10:00:00Z"}]`), false)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		req, err := parseBody(bytes.NewReader(body), ndjson, 50)
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) && (re.Index < 0 || re.Index >= 50) {
				t.Fatalf("record index %d out of range", re.Index)
			}
			return
		}
		if req.size() > 50 || len(req.events) != len(req.eventAt) || len(req.metrics) != len(req.metricAt) {
			t.Fatalf("limits or positions broken: %d records", req.size())
		}
	})
}
