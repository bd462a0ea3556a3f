package query

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// appendJSON writes the answer as encoding/json would, followed by a newline as json.Encoder
// writes, without encoding/json's reflection per point and check of the series' output.
func (a AggregateAnswer) appendJSON(b []byte) ([]byte, error) {
	type head struct {
		Name          string `json:"name"`
		Source        string `json:"source"`
		BucketSeconds int64  `json:"bucket_seconds"`
		Start         string `json:"start"`
		End           string `json:"end"`
	}
	h, err := json.Marshal(head{a.Name, a.Source, a.BucketSeconds, a.Start, a.End})
	if err != nil {
		return nil, err
	}
	points := 0
	for _, s := range a.Series {
		points += len(s.Points)
	}
	b = slices.Grow(b, len(h)+64*len(a.Series)+48*points) // about what a point with one value takes
	b = append(b, h[:len(h)-1]...)
	if a.Series == nil {
		return append(b, `,"series":null}`+"\n"...), nil
	}
	b = append(b, `,"series":[`...)
	for i, s := range a.Series {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = s.appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, "]}\n"...), nil
}

// MarshalJSON writes a series as encoding/json would (same field names, map keys sorted, numbers
// formatted alike), without reflection per point: a day of minute buckets for 32 groups is 46,080
// points, and encoding them was half the time of such an answer.
func (s Series) MarshalJSON() ([]byte, error) {
	return s.appendJSON(make([]byte, 0, 64+len(s.Points)*64))
}

func (s Series) appendJSON(b []byte) ([]byte, error) {
	group, err := json.Marshal(s.Group)
	if err != nil {
		return nil, err
	}
	b = append(b, `{"group":`...)
	b = append(b, group...)
	if s.Points == nil {
		return append(append(b, `,"points":null`...), '}'), nil
	}
	b = append(b, `,"points":[`...)
	var keys []string
	for i, p := range s.Points {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"t":"`...)
		b = p.Time.AppendFormat(b, time.RFC3339Nano)
		if p.Values == nil && p.names == nil {
			b = append(b, `","values":null}`...)
			continue
		}
		b = append(b, `","values":{`...)
		if p.Values == nil { // the service's compact form
			first := true
			for j, k := range p.names {
				if !p.set[j] {
					continue
				}
				if !first {
					b = append(b, ',')
				}
				first = false
				b = strconv.AppendQuote(b, k) // aggregate names: plain ASCII from the allow-list
				b = append(b, ':')
				if b, err = appendJSONFloat(b, p.vals[j]); err != nil {
					return nil, err
				}
			}
			b = append(b, "}}"...)
			continue
		}
		keys = keys[:0]
		for k := range p.Values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for j, k := range keys {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k) // aggregate names: plain ASCII from the allow-list
			b = append(b, ':')
			if b, err = appendJSONFloat(b, p.Values[k]); err != nil {
				return nil, err
			}
		}
		b = append(b, "}}"...)
	}
	return append(b, "]}"...), nil
}

// appendJSONFloat formats v as encoding/json does.
func appendJSONFloat(b []byte, v float64) ([]byte, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' { // clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
