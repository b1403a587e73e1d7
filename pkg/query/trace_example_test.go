//go:build linux

package query_test

import (
	"context"
	"fmt"
	"net"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/collectord/collectord/pkg/query"
)

// One trace across a client and a server, each with its own tracer
// provider as two processes have (internal/tracing.Setup builds them from
// the OTEL_* environment). The request carries the client span's W3C
// trace context; the server's span is its child.
func Example_tracing() {
	r, cleanup := exampleRing()
	defer cleanup()
	serverSpans, clientSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	serverTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(serverSpans))
	clientTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(clientSpans))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	// A client on the loopback interface proves nothing: let it read
	// every record, as on a host whose users are all trusted.
	srv := query.NewServer(r, query.Options{TracerProvider: serverTP, AnonymousAll: true})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, root := clientTP.Tracer("example").Start(context.Background(), "logctl tail")
	c, err := query.Dial(ctx, ln.Addr().String(), query.DialOptions{Client: "logctl", TracerProvider: clientTP})
	if err != nil {
		panic(err)
	}
	// Records of one trace, whatever key the program logged it under.
	req := query.Request{N: new(int64(10)), Filter: query.Filter{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}}
	end, err := c.Query(ctx, req, printer())
	fmt.Printf("end: %s %v\n", end.Reason, err)
	c.Close()
	root.End()
	srv.Shutdown(context.Background()) // the server's span has ended by now
	<-served

	client, server := clientSpans.Ended()[0], serverSpans.Ended()[0]
	fmt.Println(client.Name(), "->", server.Name())
	fmt.Println("one trace:", client.SpanContext().TraceID() == server.SpanContext().TraceID() &&
		client.SpanContext().TraceID() == root.SpanContext().TraceID())
	fmt.Println("server span's parent is the client span:", server.Parent().SpanID() == client.SpanContext().SpanID())
	// Output:
	// end: done <nil>
	// logctl query -> collectord query
	// one trace: true
	// server span's parent is the client span: true
}
