// Package retention drops whole daily partitions older than each table's retention. Dropping
// partitions works the same on ClickHouse 18.16 and current releases (TTL does not exist on 18.16),
// and frees space at once, without rewriting data.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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

// Enforce drops, in database, every partition of events (and its indexes, events_by_trace and
// events_by_attr),
// metrics and rollups whose day ended more than the table's retention before now. A partition of day D is kept while D >= today - days.
func Enforce(ctx context.Context, conn driver.Conn, database string, cfg Config, now time.Time) ([]Dropped, error) {
	if !schemas.ValidIdentifier(database) {
		return nil, fmt.Errorf("retention: database %q is not a valid identifier", database)
	}
	days := map[string]int{"events": cfg.EventsDays, "events_by_trace": cfg.EventsDays, "events_by_attr": cfg.EventsDays, "metrics": cfg.MetricsDays, "rollups": cfg.RollupsDays}
	rows, err := conn.Query(ctx, "SELECT DISTINCT table, partition FROM system.parts WHERE database = ? AND active AND table IN ('events', 'events_by_trace', 'events_by_attr', 'metrics', 'rollups')", database)
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
		keep := days[d.Table]
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
		if err := conn.Exec(ctx, "ALTER TABLE "+database+"."+d.Table+" DROP PARTITION "+d.Partition); err != nil {
			return dropped, fmt.Errorf("retention: drop %s partition %s: %w", d.Table, d.Partition, err)
		}
		dropped = append(dropped, d)
	}
	return dropped, nil
}

// Run enforces retention now and then every cfg.Interval until ctx ends; errors are logged and
// retried at the next interval.
func Run(ctx context.Context, conn driver.Conn, database string, cfg Config, log *slog.Logger) error {
	for {
		dropped, err := Enforce(ctx, conn, database, cfg, time.Now())
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
