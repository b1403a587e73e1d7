package litetrace

import (
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
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
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://h:1"}, bad: true},
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
