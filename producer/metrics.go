package producer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary/tributary/internal/observe"
)

// Register adds the client's metrics to reg: tributary_producer_records_accepted_total, _sent_total,
// _failed_total, _dropped_total{reason: disabled, sampled, buffer_full, invalid}, and the gauges
// tributary_producer_buffered_records and _buffered_bytes.
func (c *Client) Register(reg prometheus.Registerer) error {
	return reg.Register(observe.NewStatsCollector([]observe.Stat{
		{Name: "tributary_producer_records_accepted_total", Help: "Records validated and handed to the Kafka client."},
		{Name: "tributary_producer_records_sent_total", Help: "Records acknowledged by Kafka."},
		{Name: "tributary_producer_records_failed_total", Help: "Records Kafka finally refused."},
		{Name: "tributary_producer_records_dropped_total", Help: "Records discarded, by reason.", Labels: []string{"reason"}},
		{Name: "tributary_producer_buffered_records", Help: "Records accepted and not yet acknowledged.", Gauge: true},
		{Name: "tributary_producer_buffered_bytes", Help: "Encoded bytes of the buffered records.", Gauge: true},
	}, func(emit func(string, float64, ...string)) {
		st := c.Stats()
		emit("tributary_producer_records_accepted_total", float64(st.Accepted))
		emit("tributary_producer_records_sent_total", float64(st.Sent))
		emit("tributary_producer_records_failed_total", float64(st.Failed))
		for reason, v := range map[string]uint64{"disabled": st.Disabled, "sampled": st.Sampled, "buffer_full": st.DroppedBufferFull, "invalid": st.Invalid} {
			emit("tributary_producer_records_dropped_total", float64(v), reason)
		}
		emit("tributary_producer_buffered_records", float64(st.Buffered))
		emit("tributary_producer_buffered_bytes", float64(st.BufferedBytes))
	}))
}
