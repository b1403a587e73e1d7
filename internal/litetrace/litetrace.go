// Package litetrace is a small OpenTelemetry tracer for short-lived
// commands: it records the few spans a logctl run makes and exports them
// once, at exit, as OTLP/HTTP JSON over a plain socket.
//
// The full SDK with its OTLP exporter (internal/tracing) adds 12 MB to a
// binary and about 3 ms to every start, more than a whole `logctl tail -n
// 100` may take. This package links nothing beyond the OpenTelemetry API
// and the standard library's net and encoding/json.
//
// It reads the standard variables: tracing is on when OTEL_TRACES_EXPORTER
// is "otlp", or when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set and OTEL_TRACES_EXPORTER is not; off
// with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Only plain
// http:// endpoints are supported (a local collector); the service name is
// OTEL_SERVICE_NAME or the one given. Every span is sampled; a parent's
// sampled flag is kept.
package litetrace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// Setup returns a tracer provider and the function that exports what it
// recorded. With tracing off it returns a no-op provider and a flush that
// does nothing. A malformed endpoint is an error, with a no-op provider.
func Setup(serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	if !strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		exp := os.Getenv("OTEL_TRACES_EXPORTER")
		endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		if endpoint == "" {
			if base := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
				endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
			}
		}
		if exp == "otlp" && endpoint == "" {
			endpoint = "http://localhost:4318/v1/traces"
		}
		if (exp == "" || exp == "otlp") && endpoint != "" {
			u, err := url.Parse(endpoint)
			if err != nil || u.Scheme != "http" || u.Host == "" {
				return noop.NewTracerProvider(), off, fmt.Errorf("OTEL_EXPORTER_OTLP endpoint %q: want http://HOST:PORT/PATH", endpoint)
			}
			if name := os.Getenv("OTEL_SERVICE_NAME"); name != "" {
				serviceName = name
			}
			p := &Provider{url: u, service: serviceName}
			return p, p.Flush, nil
		}
	}
	return noop.NewTracerProvider(), off, nil
}

// Provider records spans in memory until Flush.
type Provider struct {
	embedded.TracerProvider
	url     *url.URL
	service string

	mu    sync.Mutex
	spans []*span
}

// Tracer implements trace.TracerProvider.
func (p *Provider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return &tracer{p: p, scope: name}
}

type tracer struct {
	embedded.Tracer
	p     *Provider
	scope string
}

func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	parent := trace.SpanContextFromContext(ctx)
	var tid trace.TraceID
	flags := trace.FlagsSampled
	if parent.IsValid() && !cfg.NewRoot() {
		tid, flags = parent.TraceID(), parent.TraceFlags()
	} else {
		parent = trace.SpanContext{}
		fill(tid[:])
	}
	var sid trace.SpanID
	fill(sid[:])
	s := &span{
		t:      t,
		name:   name,
		kind:   cfg.SpanKind(),
		parent: parent,
		sc:     trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}),
		start:  time.Now(),
		attrs:  append([]attribute.KeyValue(nil), cfg.Attributes()...),
	}
	return trace.ContextWithSpan(ctx, s), s
}

func fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < i+8 && j < len(b); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

type span struct {
	embedded.Span
	t      *tracer
	name   string
	kind   trace.SpanKind
	parent trace.SpanContext
	sc     trace.SpanContext
	start  time.Time

	mu       sync.Mutex
	end      time.Time
	attrs    []attribute.KeyValue
	status   codes.Code
	desc     string
	errs     []string
	recorded bool
}

func (s *span) End(...trace.SpanEndOption) {
	s.mu.Lock()
	if s.recorded {
		s.mu.Unlock()
		return
	}
	s.end, s.recorded = time.Now(), true
	s.mu.Unlock()
	s.t.p.mu.Lock()
	s.t.p.spans = append(s.t.p.spans, s)
	s.t.p.mu.Unlock()
}

func (s *span) AddEvent(string, ...trace.EventOption) {}
func (s *span) AddLink(trace.Link)                    {}
func (s *span) IsRecording() bool                     { s.mu.Lock(); defer s.mu.Unlock(); return !s.recorded }
func (s *span) SpanContext() trace.SpanContext        { return s.sc }
func (s *span) SetName(name string)                   { s.mu.Lock(); s.name = name; s.mu.Unlock() }
func (s *span) TracerProvider() trace.TracerProvider  { return s.t.p }

func (s *span) RecordError(err error, _ ...trace.EventOption) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.errs = append(s.errs, err.Error())
	s.mu.Unlock()
}

func (s *span) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	s.status, s.desc = code, description
	s.mu.Unlock()
}

func (s *span) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	s.attrs = append(s.attrs, kv...)
	s.mu.Unlock()
}

// Flush exports the ended spans in one OTLP/HTTP JSON request and forgets
// them. It waits at most until ctx is done.
func (p *Provider) Flush(ctx context.Context) error {
	p.mu.Lock()
	spans := p.spans
	p.spans = nil
	p.mu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	body, err := json.Marshal(p.request(spans))
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.url.Host)
	if err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	path := p.url.RequestURI()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, p.url.Host, len(body))
	if _, err := conn.Write(body); err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	if f := strings.Fields(status); len(f) < 2 || !strings.HasPrefix(f[1], "2") {
		return errors.New("export spans: collector answered " + strings.TrimSpace(status))
	}
	return nil
}

// The OTLP JSON encoding (opentelemetry-proto, JSON mapping): ids in hex,
// times as decimal strings of Unix nanoseconds, enums as numbers.
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKV `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope struct {
			Name string `json:"name"`
		} `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpSpan struct {
		TraceID      string     `json:"traceId"`
		SpanID       string     `json:"spanId"`
		ParentSpanID string     `json:"parentSpanId,omitempty"`
		Name         string     `json:"name"`
		Kind         int        `json:"kind"`
		Start        string     `json:"startTimeUnixNano"`
		End          string     `json:"endTimeUnixNano"`
		Attributes   []otlpKV   `json:"attributes,omitempty"`
		Status       otlpStatus `json:"status"`
	}
	otlpStatus struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}
	otlpKV struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
)

func (p *Provider) request(spans []*span) otlpRequest {
	bySc := map[string]*otlpScopeSpans{}
	var order []string
	for _, s := range spans {
		ss := bySc[s.t.scope]
		if ss == nil {
			ss = &otlpScopeSpans{}
			ss.Scope.Name = s.t.scope
			bySc[s.t.scope] = ss
			order = append(order, s.t.scope)
		}
		s.mu.Lock()
		o := otlpSpan{
			TraceID: s.sc.TraceID().String(),
			SpanID:  s.sc.SpanID().String(),
			Name:    s.name,
			Kind:    int(s.kind),
			Start:   strconv.FormatInt(s.start.UnixNano(), 10),
			End:     strconv.FormatInt(s.end.UnixNano(), 10),
		}
		if s.parent.IsValid() {
			o.ParentSpanID = s.parent.SpanID().String()
		}
		for _, kv := range s.attrs {
			o.Attributes = append(o.Attributes, otlpAttr(kv))
		}
		switch s.status {
		case codes.Error:
			o.Status = otlpStatus{Code: 2, Message: s.desc}
		case codes.Ok:
			o.Status = otlpStatus{Code: 1}
		}
		if len(s.errs) > 0 && o.Status.Message == "" {
			o.Status.Message = strings.Join(s.errs, "; ")
		}
		s.mu.Unlock()
		ss.Spans = append(ss.Spans, o)
	}
	rs := otlpResourceSpans{Resource: otlpResource{Attributes: []otlpKV{otlpAttr(attribute.String("service.name", p.service))}}}
	for _, name := range order {
		rs.ScopeSpans = append(rs.ScopeSpans, *bySc[name])
	}
	return otlpRequest{ResourceSpans: []otlpResourceSpans{rs}}
}

func otlpAttr(kv attribute.KeyValue) otlpKV {
	v := map[string]any{}
	switch kv.Value.Type() {
	case attribute.BOOL:
		v["boolValue"] = kv.Value.AsBool()
	case attribute.INT64:
		v["intValue"] = strconv.FormatInt(kv.Value.AsInt64(), 10)
	case attribute.FLOAT64:
		v["doubleValue"] = kv.Value.AsFloat64()
	default:
		v["stringValue"] = kv.Value.String()
	}
	return otlpKV{Key: string(kv.Key), Value: v}
}
