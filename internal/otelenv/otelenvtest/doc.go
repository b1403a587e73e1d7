// Package otelenvtest is the conformance test of a tracer setup against
// internal/otelenv: whatever the OTEL_* environment, the setup traces
// exactly when otelenv.Read says so, refuses what Read refuses, naming the
// same variable, and posts its spans to the URL Read gives, in the
// protocol Read gives, with its service name and resource attributes.
// internal/tracing (collectord) and internal/litetrace (logctl) both run
// it, which is what makes their rules the same.
//
// Run changes the process's environment (t.Setenv): a test that calls it
// must not be parallel. For the HTTPS case it makes a test certificate the
// system's roots through SSL_CERT_FILE, which Go reads once per process,
// at the first verification: Run must come before anything else in its
// test binary verifies a certificate, and nothing after it can verify one
// of the real world.
package otelenvtest
