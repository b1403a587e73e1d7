//go:build ignore

// This file is not part of logctl. bench/tracer/run.sh copies it into a
// copy of cmd/logctl and calls benchTracer where tail.go calls
// litetrace.Setup, to build logctl tracing with the OpenTelemetry SDK
// (go.opentelemetry.io/otel/sdk/trace) and a small OTLP/HTTP JSON
// exporter of its own: no otlptracehttp, no protobuf. It follows
// otelenv's decision but always sends JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/collectord/collectord/internal/otelenv"
)

func benchTracer(serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
	cfg, err := otelenv.Read(os.Getenv)
	if err != nil || !cfg.On {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, err
	}
	if cfg.ServiceName != "" {
		serviceName = cfg.ServiceName
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(serviceName)}
	for _, a := range cfg.Attributes {
		attrs = append(attrs, attribute.String(a.Key, a.Value))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&jsonExporter{url: cfg.Endpoint}),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return tp, tp.Shutdown, nil
}

// jsonExporter posts each batch as one OTLP/HTTP JSON request.
type jsonExporter struct {
	url    string
	client http.Client
}

func (e *jsonExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	var scopes []string
	byScope := map[string][]any{}
	for _, s := range spans {
		span := map[string]any{
			"traceId":           s.SpanContext().TraceID().String(),
			"spanId":            s.SpanContext().SpanID().String(),
			"name":              s.Name(),
			"kind":              int(s.SpanKind()),
			"startTimeUnixNano": strconv.FormatInt(s.StartTime().UnixNano(), 10),
			"endTimeUnixNano":   strconv.FormatInt(s.EndTime().UnixNano(), 10),
			"attributes":        jsonKVs(s.Attributes()),
			"status":            map[string]any{"code": int(s.Status().Code), "message": s.Status().Description},
		}
		if s.Parent().IsValid() {
			span["parentSpanId"] = s.Parent().SpanID().String()
		}
		scope := s.InstrumentationScope().Name
		if _, ok := byScope[scope]; !ok {
			scopes = append(scopes, scope)
		}
		byScope[scope] = append(byScope[scope], span)
	}
	var scopeSpans []any
	for _, scope := range scopes {
		scopeSpans = append(scopeSpans, map[string]any{"scope": map[string]any{"name": scope}, "spans": byScope[scope]})
	}
	body, err := json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource":   map[string]any{"attributes": jsonKVs(spans[0].Resource().Attributes())},
		"scopeSpans": scopeSpans,
	}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("export spans: collector answered %s", resp.Status)
	}
	return nil
}

func (e *jsonExporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// jsonKVs encodes attributes in OTLP JSON: 64-bit integers as strings.
func jsonKVs(kvs []attribute.KeyValue) []any {
	out := []any{}
	for _, kv := range kvs {
		var v any
		switch kv.Value.Type() {
		case attribute.BOOL:
			v = map[string]any{"boolValue": kv.Value.AsBool()}
		case attribute.INT64:
			v = map[string]any{"intValue": strconv.FormatInt(kv.Value.AsInt64(), 10)}
		case attribute.FLOAT64:
			v = map[string]any{"doubleValue": kv.Value.AsFloat64()}
		default:
			v = map[string]any{"stringValue": kv.Value.String()}
		}
		out = append(out, map[string]any{"key": string(kv.Key), "value": v})
	}
	return out
}
