"""Records logs and metrics with the OpenTelemetry Python SDK and exports them over OTLP.

producer/gateway's TestOTLPWithThePythonSDK runs it (in deploy/otlp/venv.sh's environment) to
send to the gateway what the test tells it, then checks what Tributary stored:

    python send.py PLAN.json

PLAN.json holds transport ("http" or "grpc"), endpoint (http://host:port for HTTP, host:port for
gRPC), token, temporality ("delta" or "cumulative", for counters and histograms), service, host,
logs (records to emit: time_unix_nano, event_name, body, attributes) and rounds (each: counter,
gauge, updown, latency and size values, recorded and then exported once). latency is a histogram
with the SDK's default explicit buckets, size one with exponential buckets. It exits non-zero,
naming the export, when any export fails.
"""

import json
import sys

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

failures = []


class CheckedMetrics(MetricExporter):
    """Exports through inner, remembering failures (the SDK only logs them)."""

    def __init__(self, inner):
        super().__init__(preferred_temporality=inner._preferred_temporality)
        self.inner = inner

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis)
        if result != MetricExportResult.SUCCESS:
            failures.append("metrics export: %s" % result)
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.inner.shutdown()


class CheckedLogs(LogRecordExporter):
    def __init__(self, inner):
        self.inner = inner

    def export(self, batch):
        result = self.inner.export(batch)
        if result != LogRecordExportResult.SUCCESS:
            failures.append("logs export: %s" % result)
        return result

    def force_flush(self, timeout_millis=30_000):
        return True

    def shutdown(self):
        self.inner.shutdown()


def exporters(plan):
    t = AggregationTemporality.DELTA if plan["temporality"] == "delta" else AggregationTemporality.CUMULATIVE
    temporality = {Counter: t, Histogram: t, UpDownCounter: AggregationTemporality.CUMULATIVE}
    if plan["transport"] == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        headers = {"Authorization": "Bearer " + plan["token"]}
        return (
            OTLPLogExporter(endpoint=plan["endpoint"] + "/v1/logs", headers=headers, compression=Compression.Gzip),
            OTLPMetricExporter(endpoint=plan["endpoint"] + "/v1/metrics", headers=headers, preferred_temporality=temporality),
        )
    from grpc import Compression
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    headers = (("authorization", "Bearer " + plan["token"]),)
    return (
        OTLPLogExporter(endpoint=plan["endpoint"], insecure=True, headers=headers, compression=Compression.Gzip),
        OTLPMetricExporter(endpoint=plan["endpoint"], insecure=True, headers=headers, preferred_temporality=temporality),
    )


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    resource = Resource.create({"service.name": plan["service"], "host.name": plan["host"], "transport": plan["transport"]})
    log_exporter, metric_exporter = exporters(plan)

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(CheckedLogs(log_exporter)))
    logger = logs.get_logger("otlp-python", "1.2.3")
    span = SpanContext(trace_id=int(plan["trace_id"], 16), span_id=int(plan["span_id"], 16), is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))
    for rec in plan["logs"]:
        logger.emit(LogRecord(timestamp=rec["time_unix_nano"], context=set_span_in_context(NonRecordingSpan(span)),
                              severity_text="WARN", severity_number=SeverityNumber.WARN, body=rec["body"],
                              attributes=rec["attributes"], event_name=rec.get("event_name")))
    logs.shutdown()

    reader = PeriodicExportingMetricReader(CheckedMetrics(metric_exporter), export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader],
                           views=[View(instrument_name="size", aggregation=ExponentialBucketHistogramAggregation(max_size=160, max_scale=20))])
    meter = meters.get_meter("otlp-python")
    counter = meter.create_counter("requests", unit="1")
    gauge = meter.create_gauge("temperature")
    updown = meter.create_up_down_counter("queue_depth")
    latency = meter.create_histogram("latency")
    size = meter.create_histogram("size", unit="By")
    for round_ in plan["rounds"]:
        for v in round_["counter"]:
            counter.add(v)
        for v in round_["gauge"]:
            gauge.set(v)
        for v in round_["updown"]:
            updown.add(v)
        for v in round_["latency"]:
            latency.record(v)
        for v in round_["size"]:
            size.record(v)
        if not meters.force_flush():
            failures.append("metrics force_flush")
    meters.shutdown()
    if failures:
        sys.exit("OTLP exports failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
