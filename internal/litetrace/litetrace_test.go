package litetrace

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/collectord/collectord/internal/otelenv/otelenvtest"
)

func TestSetupFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: map[string]string{}, on: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}, on: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}, on: false},
		// The rules logctl shares with the daemon since otelenv: HTTPS,
		// exporter names in any case, and loud refusals.
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://h:1"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": " OTLP "}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "h:1"}, bad: true},
	} {
		for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
			t.Setenv(k, tc.env[k])
		}
		tp, _, err := Setup("logctl")
		_, isNoop := tp.(noop.TracerProvider)
		if (err != nil) != tc.bad || isNoop == tc.on {
			t.Errorf("%v: provider %T, err %v; want on=%v bad=%v", tc.env, tp, err, tc.on, tc.bad)
		}
	}
}

// TestConformance: Setup follows the same OTEL_* rules as the daemon's
// SDK setup.
func TestConformance(t *testing.T) {
	otelenvtest.Run(t, Setup)
}

// exported is one span as a collector decoded it, in either encoding.
type exported struct {
	Service                 string
	Scope                   string
	TraceID, SpanID, Parent string // hex
	Name                    string
	Kind                    int
	Start, End              int64
	Attrs                   map[string]string // as "type:value"
	Status                  int
	Message                 string
}

// TestEncodings: the protobuf and JSON requests carry every field of every
// span, as a collector decodes them.
func TestEncodings(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1/v1/traces")
	p := &Provider{url: u, resource: []attribute.KeyValue{attribute.String("service.name", "logctl"), attribute.String("team", "logs")}}
	ctx, root := p.Tracer("logctl").Start(context.Background(), "logctl tail",
		trace.WithAttributes(attribute.Bool("b", true), attribute.Int("i", -7), attribute.Float64("f", 0.5), attribute.String("s", "é")))
	_, child := p.Tracer("pkg/query").Start(ctx, "logctl query", trace.WithSpanKind(trace.SpanKindClient))
	child.RecordError(errors.New("refused"))
	child.SetStatus(codes.Error, "")
	child.End()
	root.SetStatus(codes.Ok, "")
	root.End()

	var want []exported
	for _, s := range p.spans {
		e := exported{
			Service: "logctl", Scope: s.t.scope,
			TraceID: s.sc.TraceID().String(), SpanID: s.sc.SpanID().String(),
			Name: s.name, Kind: int(s.kind), Start: s.start.UnixNano(), End: s.end.UnixNano(),
			Attrs: map[string]string{},
		}
		if s.parent.IsValid() {
			e.Parent = s.parent.SpanID().String()
		}
		want = append(want, e)
	}
	want[0].Status, want[0].Message = 2, "refused" // the child ended first
	want[1].Status = 1
	want[1].Attrs = map[string]string{"b": "bool:true", "i": "int:-7", "f": "double:0.5", "s": "string:é"}
	if want[0].Parent != want[1].SpanID || want[0].TraceID != want[1].TraceID {
		t.Fatalf("the child span is not linked to its parent: %+v", want)
	}

	body := encodeProtobuf(p.resource, p.spans)
	got, err := decodeProtobuf(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("protobuf: got\n%+v\nwant\n%+v", got, want)
	}
	body, err = encodeJSON(p.resource, p.spans)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = decodeJSON(body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("json: got\n%+v\nwant\n%+v", got, want)
	}
}

func decodeProtobuf(body []byte) ([]exported, error) {
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var out []exported
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				e := exported{
					Service: service, Scope: ss.GetScope().GetName(),
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					Parent: hex.EncodeToString(s.ParentSpanId), Name: s.Name, Kind: int(s.Kind),
					Start: int64(s.StartTimeUnixNano), End: int64(s.EndTimeUnixNano),
					Attrs:  map[string]string{},
					Status: int(s.GetStatus().GetCode()), Message: s.GetStatus().GetMessage(),
				}
				for _, kv := range s.Attributes {
					e.Attrs[kv.Key] = pbValue(kv.Value)
				}
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func pbValue(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint("bool:", x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint("int:", x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint("double:", x.DoubleValue)
	case *commonpb.AnyValue_StringValue:
		return "string:" + x.StringValue
	}
	return fmt.Sprintf("%T", v.Value)
}

// decodeJSON decodes the OTLP JSON encoding: ids in hex, 64-bit integers
// as strings.
func decodeJSON(body []byte) ([]exported, error) {
	type value struct {
		BoolValue   *bool
		IntValue    *string
		DoubleValue *float64
		StringValue *string
	}
	type kv struct {
		Key   string
		Value value
	}
	var req struct {
		ResourceSpans []struct {
			Resource   struct{ Attributes []kv }
			ScopeSpans []struct {
				Scope struct{ Name string }
				Spans []struct {
					TraceID, SpanID, ParentSpanID, Name string
					Kind                                int
					StartTimeUnixNano, EndTimeUnixNano  string
					Attributes                          []kv
					Status                              struct {
						Code    int
						Message string
					}
				}
			}
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var out []exported
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" && a.Value.StringValue != nil {
				service = *a.Value.StringValue
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				e := exported{
					Service: service, Scope: ss.Scope.Name,
					TraceID: s.TraceID, SpanID: s.SpanID, Parent: s.ParentSpanID,
					Name: s.Name, Kind: s.Kind, Attrs: map[string]string{},
					Status: s.Status.Code, Message: s.Status.Message,
				}
				var err1, err2 error
				e.Start, err1 = strconv.ParseInt(s.StartTimeUnixNano, 10, 64)
				e.End, err2 = strconv.ParseInt(s.EndTimeUnixNano, 10, 64)
				if err := errors.Join(err1, err2); err != nil {
					return nil, err
				}
				for _, a := range s.Attributes {
					switch v := a.Value; {
					case v.BoolValue != nil:
						e.Attrs[a.Key] = fmt.Sprint("bool:", *v.BoolValue)
					case v.IntValue != nil:
						e.Attrs[a.Key] = "int:" + *v.IntValue
					case v.DoubleValue != nil:
						e.Attrs[a.Key] = fmt.Sprint("double:", *v.DoubleValue)
					case v.StringValue != nil:
						e.Attrs[a.Key] = "string:" + *v.StringValue
					}
				}
				out = append(out, e)
			}
		}
	}
	return out, nil
}
