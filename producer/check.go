package producer

import "context"

// Check returns what RecordBatch would refuse of events and metrics: one *BatchError per bad
// record (a bad field, attributes over the limits, ErrRecordTooLarge), in slice order, or nil. It
// buffers nothing. A record RecordBatch would discard on purpose (its kind switched off, its trace
// sampled out) is not an error and is not counted as discarded here. Refused records are counted in
// Stats.Invalid, as RecordBatch counts them. The OTLP gateway uses it to accept the good records
// of a request and report the bad ones (OTLP's partial success). Safe for concurrent use.
func (c *Client) Check(events []Event, metrics []Metric) []*BatchError {
	var errs []*BatchError
	for i, e := range events {
		if !c.cfg.EnableEvents || !c.Sampled(e.TraceID) {
			continue
		}
		if _, err := c.prepareEvent(context.Background(), &e); err != nil {
			errs = append(errs, &BatchError{Kind: "event", Index: i, Err: err})
		}
	}
	for i, m := range metrics {
		if !c.cfg.EnableMetrics || !c.Sampled(m.TraceID) {
			continue
		}
		if _, err := c.prepareMetric(context.Background(), &m); err != nil {
			errs = append(errs, &BatchError{Kind: "metric", Index: i, Err: err})
		}
	}
	return errs
}
