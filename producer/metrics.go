package producer

import "github.com/prometheus/client_golang/prometheus"

type statsCollector struct {
	c    *Client
	desc map[string]*prometheus.Desc
}

var statsHelp = map[string]string{
	"tributary_producer_records_accepted_total": "Records validated and handed to the Kafka client.",
	"tributary_producer_records_sent_total":     "Records acknowledged by Kafka.",
	"tributary_producer_records_failed_total":   "Records Kafka finally refused.",
	"tributary_producer_records_dropped_total":  "Records discarded, by reason: disabled, sampled, buffer_full, invalid.",
	"tributary_producer_buffered_records":       "Records accepted and not yet acknowledged.",
	"tributary_producer_buffered_bytes":         "Encoded bytes of the buffered records.",
}

func (s *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.desc {
		ch <- d
	}
}

func (s *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.c.Stats()
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(s.desc[name], prometheus.CounterValue, float64(v), labels...)
	}
	counter("tributary_producer_records_accepted_total", st.Accepted)
	counter("tributary_producer_records_sent_total", st.Sent)
	counter("tributary_producer_records_failed_total", st.Failed)
	for reason, v := range map[string]uint64{"disabled": st.Disabled, "sampled": st.Sampled, "buffer_full": st.DroppedBufferFull, "invalid": st.Invalid} {
		counter("tributary_producer_records_dropped_total", v, reason)
	}
	ch <- prometheus.MustNewConstMetric(s.desc["tributary_producer_buffered_records"], prometheus.GaugeValue, float64(st.Buffered))
	ch <- prometheus.MustNewConstMetric(s.desc["tributary_producer_buffered_bytes"], prometheus.GaugeValue, float64(st.BufferedBytes))
}

// Register adds the client's metrics to reg: accepted, sent, failed, dropped by reason, buffered
// records and bytes.
func (c *Client) Register(reg prometheus.Registerer) error {
	s := &statsCollector{c: c, desc: map[string]*prometheus.Desc{}}
	for name, help := range statsHelp {
		var labels []string
		if name == "tributary_producer_records_dropped_total" {
			labels = []string{"reason"}
		}
		s.desc[name] = prometheus.NewDesc(name, help, labels, nil)
	}
	return reg.Register(s)
}
