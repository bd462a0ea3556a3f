package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Span is the trace and span a piece of work belongs to. Records made with a context carrying a
// Span take its TraceID (and SpanID, for events) when they have none of their own.
type Span struct {
	TraceID string
	SpanID  string
}

type spanKey struct{}

// WithSpan returns ctx carrying sp.
func WithSpan(ctx context.Context, sp Span) context.Context {
	return context.WithValue(ctx, spanKey{}, sp)
}

// SpanFromContext returns the Span ctx carries.
func SpanFromContext(ctx context.Context) (Span, bool) {
	sp, ok := ctx.Value(spanKey{}).(Span)
	return sp, ok
}

// NewTraceID returns a random 128-bit trace id in hex (W3C trace-context form).
func NewTraceID() string { return randomHex(16) }

// NewSpanID returns a random 64-bit span id in hex.
func NewSpanID() string { return randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartSpan returns ctx carrying a new span: in ctx's trace if it has one, else in a new trace.
func StartSpan(ctx context.Context) (context.Context, Span) {
	sp, ok := SpanFromContext(ctx)
	if !ok || sp.TraceID == "" {
		sp.TraceID = NewTraceID()
	}
	sp.SpanID = NewSpanID()
	return WithSpan(ctx, sp), sp
}
