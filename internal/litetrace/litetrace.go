package litetrace

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/collectord/collectord/internal/otelenv"
)

// Setup returns a tracer provider and the function that exports what it
// recorded, as internal/otelenv reads the environment:
//
//   - tracing off: a no-op provider, a flush that does nothing, and a nil
//     error;
//   - tracing on: a *Provider, its Flush, and a nil error;
//   - a value otelenv refuses: a no-op provider, a flush that does
//     nothing, and the error naming the variable, for the caller to print.
//
// serviceName is the service.name unless the environment sets one.
func Setup(serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	cfg, err := otelenv.Read(os.Getenv)
	if err != nil || !cfg.On {
		return noop.NewTracerProvider(), off, err
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil { // otelenv.Read checked it
		return noop.NewTracerProvider(), off, err
	}
	if cfg.ServiceName != "" {
		serviceName = cfg.ServiceName
	}
	resource := []attribute.KeyValue{attribute.String("service.name", serviceName)}
	for _, a := range cfg.Attributes {
		resource = append(resource, attribute.String(a.Key, a.Value))
	}
	p := &Provider{url: u, json: cfg.Protocol == otelenv.ProtocolJSON, resource: resource}
	return p, p.Flush, nil
}

// Provider records spans in memory until Flush.
type Provider struct {
	embedded.TracerProvider
	url      *url.URL
	json     bool                 // OTLP/JSON rather than protobuf
	resource []attribute.KeyValue // service.name first

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

// Flush exports the ended spans in one OTLP/HTTP request and forgets
// them. It waits at most until ctx is done.
func (p *Provider) Flush(ctx context.Context) error {
	p.mu.Lock()
	spans := p.spans
	p.spans = nil
	p.mu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	contentType, body := "application/x-protobuf", encodeProtobuf(p.resource, spans)
	if p.json {
		var err error
		if body, err = encodeJSON(p.resource, spans); err != nil {
			return fmt.Errorf("export spans: %w", err)
		}
		contentType = "application/json"
	}
	if err := p.post(ctx, contentType, body); err != nil {
		return fmt.Errorf("export spans to %s: %w", p.url.Redacted(), err)
	}
	return nil
}

// post sends one HTTP/1.1 request on a connection of its own and checks
// that the answer is a 2xx.
func (p *Provider) post(ctx context.Context, contentType string, body []byte) error {
	port := p.url.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[p.url.Scheme]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.url.Hostname(), port))
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if p.url.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: p.url.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", p.url.RequestURI(), p.url.Host, contentType, len(body))
	if _, err := conn.Write(body); err != nil {
		return err
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if f := strings.Fields(status); len(f) < 2 || !strings.HasPrefix(f[1], "2") {
		return errors.New("collector answered " + strings.TrimSpace(status))
	}
	return nil
}
