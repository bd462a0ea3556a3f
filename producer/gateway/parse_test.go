package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseBodyRefusals(t *testing.T) {
	f := func(body string, ndjson bool, index int, field, msg string) {
		t.Helper()
		_, err := parseBody(strings.NewReader(body), ndjson, 50)
		var re *RecordError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", body)
		case index < 0 && errors.As(err, &re):
			t.Errorf("%s: got record error %v, want a body error", body, err)
		case index >= 0 && (!errors.As(err, &re) || re.Index != index || re.Field != field):
			t.Errorf("%s: got %v, want record %d field %q", body, err, index, field)
		case !strings.Contains(err.Error(), msg):
			t.Errorf("%s: got %v, want it to say %q", body, err, msg)
		}
	}
	// Trailing data after the body or a record.
	f(`{"events":[{"type":"t","name":"n"}]} garbage`, false, -1, "", "after the JSON value")
	f(`{"events":[]}{"metrics":[]}`, false, -1, "", "after the JSON value")
	f(`[{"kind":"event","type":"t","name":"n"}] x`, false, -1, "", "invalid character")
	f("{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\"}\n{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\"} {}\n", true, 1, "", "after the JSON value")
	// Numbers are JSON numbers; wrong types name the field.
	f(`[{"kind":"metric","name":"m","value":"12","aggregation_type":"gauge"}]`, false, 0, "value", "want a JSON number")
	f(`[{"kind":"metric","name":"m","value":true,"aggregation_type":"gauge"}]`, false, 0, "value", "want a JSON number")
	f(`[{"kind":"metric","name":"m","value":{},"aggregation_type":"gauge"}]`, false, 0, "value", "want a JSON number")
	f(`[{"kind":"metric","name":"m","value":1e999,"aggregation_type":"gauge"}]`, false, 0, "value", "finite")
	f(`[{"kind":"metric","name":"m","value":null,"aggregation_type":"gauge"}]`, false, 0, "value", "missing")
	f(`{"metrics":[{"name":"m","value":1},{"name":7,"value":1}]}`, false, 1, "name", "string")
	f(`[{"kind":"event","type":["t"],"name":"n"}]`, false, 0, "type", "string")
	f("{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\",\"host\":1}\n", true, 0, "host", "string")
	f(`[{"kind":"event","type":"t","name":"n","timestamp":true}]`, false, 0, "timestamp", "")
	// A body cut off by the reader's limit is the reader's error, not a bad last record.
	cut := strings.Repeat("{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\"}\n", 10)
	_, err := parseBody(&failingReader{data: []byte(cut[:len(cut)-7])}, true, 50)
	if !errors.Is(err, errBodyTooLarge) {
		t.Errorf("cut NDJSON body: got %v, want errBodyTooLarge", err)
	}
	// Still accepted: numbers of every JSON form, NDJSON without a final newline, blank lines.
	req, err := parseBody(strings.NewReader("\n{\"kind\":\"metric\",\"name\":\"m\",\"value\":-1.5e2}\n\n{\"kind\":\"metric\",\"name\":\"m\",\"value\":0}"), true, 50)
	if err != nil || len(req.metrics) != 2 || req.metrics[0].Value != -150 || req.metricAt[1] != 1 {
		t.Fatalf("good NDJSON: %+v, %v", req, err)
	}
}

// failingReader returns data, then errBodyTooLarge, as limitedReader does past the limit.
type failingReader struct{ data []byte }

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errBodyTooLarge
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func FuzzParseBody(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"t","name":"n","attributes":{"a":[1,2.5,{"b":null}]}}],"metrics":[{"name":"m","value":1,"aggregation_type":"gauge","timestamp":1.5}]}`), false)
	f.Add([]byte("{\"kind\":\"event\",\"type\":\"t\",\"name\":\"n\"}\n{\"kind\":\"metric\",\"name\":\"m\",\"value\":2}\n"), true)
	f.Add([]byte(`[{"kind":"event","timestamp":"2025-01-15T10:00:00Z"}]`), false)
	f.Add([]byte(`{"events":[]} trailing`), false)
	f.Add([]byte(`[{"kind":"metric","name":"m","value":"12"}]`), false)
	f.Add([]byte("{\"kind\":\"metric\",\"name\":\"m\",\"value\":-0.5e3} x\n"), true)
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
		// What is accepted is valid JSON, whole: no trailing data is ignored.
		if !ndjson && !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		if ndjson {
			for line := range bytes.Lines(body) {
				if line = bytes.TrimSpace(line); len(line) > 0 && !json.Valid(line) {
					t.Fatalf("accepted an NDJSON line that is not one JSON value: %q", line)
				}
			}
		}
		for _, m := range req.metrics {
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				t.Fatalf("accepted value %v", m.Value)
			}
		}
	})
}
