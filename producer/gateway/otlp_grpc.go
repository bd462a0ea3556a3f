package gateway

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP/gRPC clients may compress with gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RunGRPC serves OTLP/gRPC (the logs and metrics services) on OTLPConfig.GRPCListen until ctx
// ends, then stops gracefully within 10 seconds. ready, if not nil, receives the bound address.
// Run calls it when OTLP/gRPC is on.
func (g *Gateway) RunGRPC(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", g.cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("otlp grpc listen %s: %w", g.cfg.GRPCListen, err)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(int(g.cfg.MaxBodyBytes)),
		grpc.MaxConcurrentStreams(uint32(g.cfg.MaxConcurrentRequests)))
	plogotlp.RegisterGRPCServer(s, &grpcLogs{g: g})
	pmetricotlp.RegisterGRPCServer(s, &grpcMetrics{g: g})
	if ready != nil {
		ready <- ln.Addr().String()
	}
	g.log.Info("otlp grpc listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.Stop()
	}
	return nil
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	g *Gateway
}

func (s *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	b, err := s.g.grpcExport(ctx, "logs", func(b *otlpBatch) error { return b.convertLogs(req.Logs()) })
	if err != nil {
		return plogotlp.NewExportResponse(), err
	}
	return logsResponse(b.partial()), nil
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	g *Gateway
}

func (s *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	b, err := s.g.grpcExport(ctx, "metrics", func(b *otlpBatch) error { return b.convertMetrics(req.Metrics(), s.g.cumulative) })
	if err != nil {
		return pmetricotlp.NewExportResponse(), err
	}
	return metricsResponse(b.partial()), nil
}

// grpcExport authenticates, takes a request slot, converts and publishes; the error is a gRPC
// status (Unavailable with RetryInfo when the client should retry).
func (g *Gateway) grpcExport(ctx context.Context, signal string, convert func(*otlpBatch) error) (*otlpBatch, error) {
	tenant, st, msg := g.grpcTenant(ctx)
	if st != 0 {
		return nil, g.grpcError(otlpAnswer{status: st, code: httpCode(st), msg: msg})
	}
	leave, err := g.limits.enter()
	if err != nil {
		return nil, g.grpcError(g.otlpRefusal(err))
	}
	defer leave()
	b := newOTLPBatch(tenant, g.cfg.MaxRecords)
	err = convert(b)
	if err == nil {
		err = g.publishOTLP(ctx, signal, b)
	} else if b.cum != nil {
		b.cum.reqMu.Unlock()
	}
	if err != nil {
		return nil, g.grpcError(g.otlpRefusal(err))
	}
	g.requests.WithLabelValues("200").Inc()
	return b, nil
}

// grpcTenant reads the bearer token of the call's "authorization" metadata.
func (g *Gateway) grpcTenant(ctx context.Context) (string, int, string) {
	md, _ := metadata.FromIncomingContext(ctx)
	var tok string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			tok = t
		}
	}
	if tok == "" {
		return "", http.StatusUnauthorized, "missing bearer token (metadata authorization: Bearer <token>)"
	}
	for known, tenant := range g.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
			return tenant, 0, ""
		}
	}
	return "", http.StatusForbidden, "unknown token"
}

func (g *Gateway) grpcError(a otlpAnswer) error {
	g.requests.WithLabelValues(strconv.Itoa(a.status)).Inc()
	if a.overload != "" {
		g.overload.WithLabelValues(a.overload).Inc()
	}
	st := status.New(a.code, a.msg)
	if a.retryAfter != "" {
		secs, _ := strconv.Atoi(a.retryAfter)
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); err == nil {
			st = d
		}
	}
	return st.Err()
}
