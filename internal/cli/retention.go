package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/retention"
)

const retentionUsage = `Usage: tributary retention [once]

Drops whole daily partitions of the events, metrics and rollups tables older than their
retention (TRIBUTARY_RETENTION_EVENTS_DAYS, _METRICS_DAYS, _ROLLUPS_DAYS; 0 keeps everything),
now and then every TRIBUTARY_RETENTION_INTERVAL, until stopped; "once" runs one pass and exits.
With TRIBUTARY_CLICKHOUSE_CLUSTER set it drops them on every shard and replica (ON CLUSTER).
Needs a ClickHouse user that may ALTER (TRIBUTARY_CLICKHOUSE_*).

Example:
  TRIBUTARY_RETENTION_EVENTS_DAYS=14 tributary retention once
`

type retentionRole struct {
	ClickHouse chdb.Config `envconfig:"CLICKHOUSE"`
	retention.Config
}

func (r *retentionRole) Validate() error {
	return errors.Join(r.ClickHouse.Validate(), r.Config.Validate())
}

func runRetention(ctx context.Context, env *Env, args []string) error {
	once := len(args) == 1 && args[0] == "once"
	if !once {
		if err := noArgs(args); err != nil {
			return err
		}
	}
	var role retentionRole
	if err := loadConfig(&role); err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, role.ClickHouse, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !once {
		return retention.Run(ctx, conn, role.ClickHouse, role.Config, env.Log)
	}
	dropped, err := retention.Enforce(ctx, conn, role.ClickHouse, role.Config, time.Now())
	for _, d := range dropped {
		fmt.Fprintf(env.Stdout, "dropped %s partition %s\n", d.Table, d.Partition)
	}
	fmt.Fprintf(env.Stdout, "%d partitions dropped\n", len(dropped))
	return err
}
