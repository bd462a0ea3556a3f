package query

// For the tests in package query_test.
var (
	SketchQuantileSQL = sketchQuantileSQL
	SketchAliases     = sketchAliases
)

// MaxEdgeEvents is the most events of one microsecond an attribute page reads from the index.
const MaxEdgeEvents = maxEdgeEvents
