package query

// For the tests in package query_test.
var (
	SketchQuantileSQL = sketchQuantileSQL
	SketchAliases     = sketchAliases
)
