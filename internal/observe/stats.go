package observe

import "github.com/prometheus/client_golang/prometheus"

// Stat describes one exported series of a StatsCollector.
type Stat struct {
	Name, Help string
	Gauge      bool     // a gauge; otherwise a counter
	Labels     []string // label names
}

// StatsCollector exports values read from a component's own counters at scrape time, so the
// component keeps one set of counts (its Stats) and Prometheus never counts twice.
type StatsCollector struct {
	stats   map[string]Stat
	desc    map[string]*prometheus.Desc
	collect func(emit func(name string, value float64, labels ...string))
}

// NewStatsCollector returns a collector of stats whose values collect emits on each scrape.
func NewStatsCollector(stats []Stat, collect func(emit func(name string, value float64, labels ...string))) *StatsCollector {
	c := &StatsCollector{stats: map[string]Stat{}, desc: map[string]*prometheus.Desc{}, collect: collect}
	for _, s := range stats {
		c.stats[s.Name] = s
		c.desc[s.Name] = prometheus.NewDesc(s.Name, s.Help, s.Labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StatsCollector) Collect(ch chan<- prometheus.Metric) {
	c.collect(func(name string, v float64, labels ...string) {
		t := prometheus.CounterValue
		if c.stats[name].Gauge {
			t = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(c.desc[name], t, v, labels...)
	})
}
