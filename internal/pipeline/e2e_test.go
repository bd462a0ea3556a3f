package pipeline_test

import (
	"testing"

	"github.com/tributary/tributary/internal/pipeline/pipelinetest"
	"github.com/tributary/tributary/internal/testenv"
)

// The acceptance test of the walking skeleton, on one broker and one ClickHouse server: 10,000
// events and 10,000 metrics recorded through the SDK come back through the query service with
// exact counts and every field equal to what was sent, nested attributes included; poison records
// are dead-lettered byte for byte; the rollups match the raw metrics. Real Kafka, real ClickHouse,
// and the read-only query account. internal/cluster runs the same scenario on the local clusters
// and checks that they answer exactly this.
func TestEndToEnd(t *testing.T) {
	a := pipelinetest.Run(t, pipelinetest.Env{Brokers: testenv.KafkaBrokers(t), Replication: 1, ClickHouse: testenv.ClickHouse(t)})
	if a.Windows == 0 {
		t.Fatal("no rollup window compared with the raw metrics")
	}
}
