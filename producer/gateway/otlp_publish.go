package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/tributary/tributary/producer"
)

// errUndecodable is a body that is not an OTLP request of its signal.
var errUndecodable = errors.New("undecodable OTLP request")

// otlpMetrics counts OTLP items (log records, data points) by signal and outcome.
func newOTLPItems() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_gateway_otlp_items_total",
		Help: "OTLP log records and metric data points by signal (logs, metrics) and outcome: accepted, or rejected (reported in the answer's partial success).",
	}, []string{"signal", "outcome"})
}

// publishOTLP hands a converted request's records to the producer, all at once. Records the
// producer refuses (a bad field, attributes over the limits, too large) are taken out with every
// other record of their item and reported in the batch's rejected count; the rest go on. An error
// means nothing of the request was accepted. Cumulative state is kept only once the records are
// accepted, and the batch's cumulative lock is released here.
func (g *Gateway) publishOTLP(ctx context.Context, signal string, b *otlpBatch) error {
	if b.cum != nil {
		defer b.cum.reqMu.Unlock()
	}
	b.dropRejected()
	g.stamp(&b.req, b.tenant)
	for attempt := 0; b.req.size() > 0; attempt++ {
		bctx, cancel := context.WithTimeout(ctx, g.cfg.BufferWait)
		_, err := g.p.RecordBatch(bctx, b.req.events, b.req.metrics)
		cancel()
		var be *producer.BatchError
		if errors.As(err, &be) && attempt == 0 {
			b.refuse(g.p.Check(b.req.events, b.req.metrics))
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	if b.cum != nil {
		b.cum.commit(b.updates)
	}
	g.records.Add(float64(b.req.size()))
	g.otlpItems.WithLabelValues(signal, "accepted").Add(float64(b.items - b.rejected))
	g.otlpItems.WithLabelValues(signal, "rejected").Add(float64(b.rejected))
	return nil
}

// partial is the answer's partial success: the rejected count and the first problem, or "".
func (b *otlpBatch) partial() (int64, string) {
	if b.rejected == 0 {
		return 0, ""
	}
	return int64(b.rejected), fmt.Sprintf("%d of %d rejected, first: %s", b.rejected, b.items, b.problem)
}

// otlpAnswer is how a refused OTLP request is answered, over HTTP and gRPC alike.
type otlpAnswer struct {
	status     int
	code       codes.Code
	msg        string
	retryAfter string // seconds; "" for none
	overload   string // the limit, for tributary_gateway_overload_total
}

// otlpRefusal maps the error that refused a request to its answer (the OTLP specification's
// codes: 503 and Unavailable are retried by clients, 400 and 413 are not).
func (g *Gateway) otlpRefusal(err error) otlpAnswer {
	var mbe *http.MaxBytesError
	var ov *overload
	var he *httpError
	var be *producer.BatchError
	switch {
	case errors.As(err, &he):
		return otlpAnswer{status: he.status, code: httpCode(he.status), msg: he.msg}
	case errors.As(err, &mbe), errors.Is(err, errBodyTooLarge):
		return otlpAnswer{status: http.StatusRequestEntityTooLarge, code: codes.ResourceExhausted,
			msg: fmt.Sprintf("body over %d bytes (TRIBUTARY_GATEWAY_MAX_BODY_BYTES); nothing was accepted", g.cfg.MaxBodyBytes)}
	case errors.Is(err, errTooMany):
		return otlpAnswer{status: http.StatusRequestEntityTooLarge, code: codes.ResourceExhausted, msg: err.Error() + " (TRIBUTARY_GATEWAY_MAX_RECORDS); nothing was accepted, send smaller batches"}
	case errors.As(err, &ov):
		return otlpAnswer{status: http.StatusServiceUnavailable, code: codes.Unavailable, msg: ov.msg, retryAfter: "1", overload: ov.limit}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return otlpAnswer{status: http.StatusRequestTimeout, code: codes.DeadlineExceeded,
			msg: "body not received within " + g.cfg.BodyTimeout.String() + " (TRIBUTARY_GATEWAY_BODY_TIMEOUT)"}
	case errors.Is(err, producer.ErrBufferFull):
		return otlpAnswer{status: http.StatusServiceUnavailable, code: codes.Unavailable, retryAfter: "1",
			msg: "ingest buffer full; nothing was accepted, retry later"}
	case errors.Is(err, producer.ErrClosed):
		return otlpAnswer{status: http.StatusServiceUnavailable, code: codes.Unavailable, retryAfter: "5", msg: "gateway shutting down; retry"}
	case errors.As(err, &be):
		return otlpAnswer{status: http.StatusBadRequest, code: codes.InvalidArgument, msg: err.Error()}
	}
	return otlpAnswer{status: http.StatusBadRequest, code: codes.InvalidArgument, msg: err.Error()}
}

func httpCode(status int) codes.Code {
	switch status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusUnsupportedMediaType, http.StatusBadRequest:
		return codes.InvalidArgument
	}
	return codes.Unknown
}
