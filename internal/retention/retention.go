// Package retention drops whole daily partitions older than each table's retention. Dropping
// partitions works the same on ClickHouse 18.16 and current releases (TTL does not exist on 18.16),
// and frees space at once, without rewriting data. On a cluster it drops them from the
// replicated local tables of every shard and replica (ON CLUSTER).
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/schemas"
)

// Config sets each table's retention in days (0 keeps everything) and how often it is enforced.
type Config struct {
	EventsDays  int           `envconfig:"RETENTION_EVENTS_DAYS" default:"30"`
	MetricsDays int           `envconfig:"RETENTION_METRICS_DAYS" default:"30"`
	RollupsDays int           `envconfig:"RETENTION_ROLLUPS_DAYS" default:"400"`
	Interval    time.Duration `envconfig:"RETENTION_INTERVAL" default:"1h"`
}

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	if c.EventsDays < 0 || c.MetricsDays < 0 || c.RollupsDays < 0 {
		errs = append(errs, fmt.Errorf("retention days (events %d, metrics %d, rollups %d): must not be negative", c.EventsDays, c.MetricsDays, c.RollupsDays))
	}
	if c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("retention interval %v: must be at least 1m", c.Interval))
	}
	return errors.Join(errs...)
}

// Dropped names one partition that was dropped.
type Dropped struct {
	Table     string
	Partition string // YYYYMMDD
}

// tableDays is each table's retention in days under cfg.
func tableDays(cfg Config) map[string]int {
	return map[string]int{"events": cfg.EventsDays, "events_trace_index": cfg.EventsDays, "events_attr_index": cfg.EventsDays,
		"metrics": cfg.MetricsDays, "rollups": cfg.RollupsDays}
}

// Enforce drops, in ch.Database, every partition of events (and its indexes, events_trace_index and
// events_attr_index), metrics and rollups whose day ended more than the table's retention before
// now. A partition of day D is kept while D >= today - days.
//
// On a cluster (ch.Cluster set) the rows are in the Replicated <table>_local tables of each shard
// (the Distributed tables hold none): Enforce lists their partitions on one replica of every shard
// (cluster() over system.parts) and drops each old one with ALTER TABLE <table>_local ON CLUSTER
// ... DROP PARTITION, which every server runs and every replica of a shard applies; Dropped then
// names the _local table. ClickHouse 18.16 has no TTL, so partitions are dropped on clusters too.
func Enforce(ctx context.Context, conn driver.Conn, ch chdb.Config, cfg Config, now time.Time) ([]Dropped, error) {
	database, cluster := ch.Database, ch.Cluster
	if !schemas.ValidIdentifier(database) {
		return nil, fmt.Errorf("retention: database %q is not a valid identifier", database)
	}
	if cluster != "" && !schemas.ValidIdentifier(cluster) {
		return nil, fmt.Errorf("retention: cluster %q is not a valid identifier", cluster)
	}
	days := tableDays(cfg)
	parts, suffix, on := "system.parts", "", ""
	if cluster != "" {
		parts, suffix, on = "cluster('"+cluster+"', system, parts)", "_local", " ON CLUSTER "+cluster
	}
	var names []string
	for _, t := range []string{"events", "events_trace_index", "events_attr_index", "metrics", "rollups"} {
		names = append(names, "'"+t+suffix+"'")
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT table, partition FROM "+parts+" WHERE database = ? AND active AND table IN ("+
		strings.Join(names, ", ")+") ORDER BY table, partition", database)
	if err != nil {
		return nil, fmt.Errorf("retention: list partitions: %w", err)
	}
	var victims []Dropped
	for rows.Next() {
		var d Dropped
		if err := rows.Scan(&d.Table, &d.Partition); err != nil {
			rows.Close()
			return nil, fmt.Errorf("retention: list partitions: %w", err)
		}
		keep := days[strings.TrimSuffix(d.Table, suffix)]
		day, err := time.Parse("20060102", d.Partition)
		if keep == 0 || err != nil {
			continue
		}
		if day.Before(now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -keep)) {
			victims = append(victims, d)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention: list partitions: %w", err)
	}
	var dropped []Dropped
	for _, d := range victims {
		if _, err := strconv.Atoi(d.Partition); err != nil {
			continue // only our numeric daily partitions
		}
		if err := conn.Exec(ctx, "ALTER TABLE "+database+"."+d.Table+on+" DROP PARTITION "+d.Partition); err != nil {
			return dropped, fmt.Errorf("retention: drop %s partition %s: %w", d.Table, d.Partition, err)
		}
		dropped = append(dropped, d)
	}
	return dropped, nil
}

// Run enforces retention in ch's database (on its cluster, if set) now and then every
// cfg.Interval until ctx ends; errors are logged and retried at the next interval.
func Run(ctx context.Context, conn driver.Conn, ch chdb.Config, cfg Config, log *slog.Logger) error {
	for {
		dropped, err := Enforce(ctx, conn, ch, cfg, time.Now())
		if err != nil {
			log.Error("retention", "err", err)
		}
		for _, d := range dropped {
			log.Info("retention dropped a partition", "table", d.Table, "partition", d.Partition)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Interval):
		}
	}
}
