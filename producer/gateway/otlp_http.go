package gateway

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP/HTTP content types.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// otlpExport is one signal's part of an OTLP/HTTP request: decode the body, convert it, and
// encode the answer with the partial success.
type otlpExport interface {
	decode(data []byte, json bool) error
	convert(g *Gateway, b *otlpBatch) error
	answer(json bool, rejected int64, msg string) ([]byte, error)
}

type logsExport struct{ req plogotlp.ExportRequest }

func (e *logsExport) decode(data []byte, json bool) error {
	e.req = plogotlp.NewExportRequest()
	return unmarshalOTLP(e.req, data, json)
}

func (e *logsExport) convert(_ *Gateway, b *otlpBatch) error { return b.convertLogs(e.req.Logs()) }

func (e *logsExport) answer(json bool, rejected int64, msg string) ([]byte, error) {
	return marshalOTLP(logsResponse(rejected, msg), json)
}

// logsResponse is the answer to a logs export (over HTTP or gRPC) that rejected some records.
func logsResponse(rejected int64, msg string) plogotlp.ExportResponse {
	resp := plogotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp
}

type metricsExport struct{ req pmetricotlp.ExportRequest }

func (e *metricsExport) decode(data []byte, json bool) error {
	e.req = pmetricotlp.NewExportRequest()
	return unmarshalOTLP(e.req, data, json)
}

func (e *metricsExport) convert(g *Gateway, b *otlpBatch) error {
	return b.convertMetrics(e.req.Metrics(), g.cumulative)
}

func (e *metricsExport) answer(json bool, rejected int64, msg string) ([]byte, error) {
	return marshalOTLP(metricsResponse(rejected, msg), json)
}

// metricsResponse is the answer to a metrics export (over HTTP or gRPC) that rejected some data
// points.
func metricsResponse(rejected int64, msg string) pmetricotlp.ExportResponse {
	resp := pmetricotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp
}

// unmarshalOTLP decodes an OTLP request of either signal from JSON or protobuf.
func unmarshalOTLP(req interface {
	UnmarshalJSON([]byte) error
	UnmarshalProto([]byte) error
}, data []byte, json bool) error {
	if json {
		return req.UnmarshalJSON(data)
	}
	return req.UnmarshalProto(data)
}

// marshalOTLP encodes an OTLP response of either signal as JSON or protobuf.
func marshalOTLP(resp interface {
	MarshalJSON() ([]byte, error)
	MarshalProto() ([]byte, error)
}, json bool) ([]byte, error) {
	if json {
		return resp.MarshalJSON()
	}
	return resp.MarshalProto()
}

// otlpHTTP serves POST /v1/logs or /v1/metrics.
func (g *Gateway) otlpHTTP(signal string, newExport func() otlpExport) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		json := ct == contentJSON
		if !json && ct != contentProtobuf && ct != "application/protobuf" {
			g.otlpReplyError(w, true, otlpAnswer{status: http.StatusUnsupportedMediaType, code: httpCode(http.StatusUnsupportedMediaType),
				msg: fmt.Sprintf("Content-Type %q: want %s or %s", ct, contentProtobuf, contentJSON)})
			return
		}
		tenant, st, msg := g.tenant(r)
		if st != 0 {
			if st == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
			}
			g.otlpReplyError(w, json, otlpAnswer{status: st, code: httpCode(st), msg: msg})
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout)) // as for /v1/ingest
		leave, err := g.limits.enter()
		if err != nil {
			g.otlpReplyError(w, json, g.otlpRefusal(err))
			return
		}
		defer leave()
		data, release, err := g.readOTLPBody(w, r)
		defer release()
		if err != nil {
			g.otlpReplyError(w, json, g.otlpRefusal(err))
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		exp := newExport()
		if err := exp.decode(data, json); err != nil {
			g.otlpReplyError(w, json, otlpAnswer{status: http.StatusBadRequest, code: httpCode(http.StatusBadRequest),
				msg: fmt.Sprintf("%v: %v; nothing was accepted", errUndecodable, err)})
			return
		}
		b := newOTLPBatch(tenant, g.cfg.MaxRecords)
		err = exp.convert(g, b)
		if err == nil {
			err = g.publishOTLP(r.Context(), signal, b)
		} else if b.cum != nil {
			b.cum.reqMu.Unlock()
		}
		if err != nil {
			g.otlpReplyError(w, json, g.otlpRefusal(err))
			return
		}
		rejected, problem := b.partial()
		body, err := exp.answer(json, rejected, problem)
		if err != nil {
			g.otlpReplyError(w, json, otlpAnswer{status: http.StatusInternalServerError, msg: "encode answer: " + err.Error()})
			return
		}
		g.otlpReply(w, json, http.StatusOK, body)
	}
}

// readOTLPBody reads a body within the JSON gateway's limits (size after decompression, in-flight
// bytes); release returns its bytes to the in-flight budget.
func (g *Gateway) readOTLPBody(w http.ResponseWriter, r *http.Request) (data []byte, release func(), err error) {
	body, closeBody, err := g.openBody(w, r)
	if err != nil {
		return nil, func() {}, err
	}
	defer closeBody()
	data, err = io.ReadAll(body)
	if err != nil {
		if _, ok := err.(*httpError); !ok && isGzipError(err) {
			err = &httpError{http.StatusBadRequest, "gzip body: " + err.Error()}
		}
	}
	return data, body.release, err
}

// isGzipError reports a corrupt gzip stream (not a limit or a timeout).
func isGzipError(err error) bool {
	return err == gzip.ErrChecksum || err == gzip.ErrHeader || err == io.ErrUnexpectedEOF
}

func (g *Gateway) otlpReply(w http.ResponseWriter, json bool, status int, body []byte) {
	if json {
		w.Header().Set("Content-Type", contentJSON)
	} else {
		w.Header().Set("Content-Type", contentProtobuf)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	g.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}

// otlpReplyError answers with a google.rpc.Status, as the OTLP specification asks.
func (g *Gateway) otlpReplyError(w http.ResponseWriter, json bool, a otlpAnswer) {
	if a.overload != "" {
		g.overload.WithLabelValues(a.overload).Inc()
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close")
	}
	st := status.New(a.code, a.msg).Proto()
	var body []byte
	if json {
		body, _ = protojson.Marshal(st)
	} else {
		body, _ = proto.Marshal(st)
	}
	g.otlpReply(w, json, a.status, body)
}
