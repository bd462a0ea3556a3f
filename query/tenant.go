package query

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
)

type tenantKey struct{}

// tenantScope says which tenant's rows a request may see: scoped is false only in open mode (no
// tokens configured), where every tenant's rows are visible.
type tenantScope struct {
	tenant string
	scoped bool
}

func tenantOf(r *http.Request) tenantScope {
	ts, _ := r.Context().Value(tenantKey{}).(tenantScope)
	return ts
}

// authenticate maps the bearer token to its tenant, or answers 401/403. With no tokens configured
// it lets every request through unscoped.
func (s *Server) authenticate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.Tokens) == 0 {
			next(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing bearer token (Authorization: Bearer <token>)"})
			return
		}
		for known, tenant := range s.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
				next(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, tenantScope{tenant: tenant, scoped: true})))
				return
			}
		}
		writeJSON(w, http.StatusForbidden, errorBody{Error: "unknown token"})
	}
}
