package query

import _ "embed"

// openAPI describes the HTTP API; the service serves it on /openapi.json.
//
//go:embed openapi.json
var openAPI []byte
