package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collectord.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The shipped example must load and must show the defaults.
func TestExampleConfigIsDefaults(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/collectord.toml"})
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	if os.Geteuid() != 0 { // the example shows root's paths
		want.Socket, want.QuerySocket = "/run/collector.sock", "/run/collectord/query.sock"
	}
	want.resolveStorage()
	if len(c.QueryAllGroups) == 0 {
		c.QueryAllGroups = nil // the example's [] is the default's nil
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("example config = %+v\ndefaults       = %+v", c, want)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	path := writeConfig(t, "ring_size = \"1MiB\"\nsocket = \"/tmp/a.sock\"\nbatch = 8\n")
	c, err := Load([]string{"--config", path, "--ring-size", "4MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RingSize != 4<<20 || c.Socket != "/tmp/a.sock" || c.Batch != 8 {
		t.Fatalf("got ring_size %s socket %s batch %d", c.RingSize, c.Socket, c.Batch)
	}
}

// A non-loopback query address is accepted only with TLS, a token, or an
// explicit query_insecure.
func TestConfigNonLoopbackQuery(t *testing.T) {
	for _, body := range []string{
		"query_addr = \"127.0.0.2:7514\"\n",
		"query_addr = \"[::1]:7514\"\n",
		"query_addr = \"localhost:7514\"\n",
		"query_addr = \"0.0.0.0:7514\"\nquery_tls_cert = \"/c.pem\"\nquery_tls_key = \"/k.pem\"\n",
		"query_addr = \"0.0.0.0:7514\"\nquery_token_file = \"/t\"\n",
		"query_addr = \"0.0.0.0:7514\"\nquery_insecure = true\n",
	} {
		if _, err := Load([]string{"--config", writeConfig(t, body)}); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	if _, err := Load([]string{"--query-addr", "0.0.0.0:7514"}); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("--query-addr 0.0.0.0:7514: err = %v, want a refusal", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"rnig = \"/x\"\n", "unknown key rnig"},
		{"ring_size = \"100MiB\"\n", "ring_size 100MiB: must be a power of two"},
		{"ring_size = \"lots\"\n", "size \"lots\""},
		{"ring_size = 65536\nmax_message = \"16MiB\"\n", "max_message 16MiB"},
		{"batch = 0\n", "batch 0: must be between 1 and 1024"},
		{"socket = \"relative.sock\"\n", "socket \"relative.sock\": must be an absolute path"},
		{"socket_mode = \"999\"\n", "mode \"999\""},
		{"query_addr = \"localhost\"\n", "query_addr \"localhost\": must be HOST:PORT"},
		{"log_level = \"loud\"\n", "log_level \"loud\""},
		{"batch = \n", "config"},
		{"ring_group = \"no-such-group-here\"\n", "ring_group \"no-such-group-here\": no such group"},
		{"rate_limit_burst = -1\n", "rate_limit_burst -1"},
		{"rate_limit_burst = 10\nrate_limit_interval = \"0s\"\n", "rate_limit_interval 0s: must be between 1ms and 1h"},
		{"rate_limit_interval = \"soon\"\n", "duration \"soon\""},
		{"storage = \"disk\"\n", "storage \"disk\": must be volatile, persistent or auto"},
		{"sync_interval = \"1ms\"\n", "sync_interval 1ms: must be between 10ms and 1h"},
		{"sync_interval = \"2h\"\n", "sync_interval 2h0m0s: must be between 10ms and 1h"},
		{"sync_interval = \"often\"\n", "sync_interval"},
		{"ring = \"ring\"\n", "ring \"ring\": must be an absolute path"},
		{"query_tls_cert = \"/c.pem\"\n", "query_tls_cert \"/c.pem\", query_tls_key \"\": set both or neither"},
		{"query_tls_client_ca = \"/ca.pem\"\n", "query_tls_client_ca \"/ca.pem\": needs query_tls_cert"},
		{"query_addr = \"0.0.0.0:7514\"\n", "query_addr \"0.0.0.0:7514\": not a loopback address"},
		{"query_addr = \":7514\"\n", "query_addr \":7514\": not a loopback address"},
		{"query_addr = \"192.0.2.1:7514\"\n", "query_tls_cert/query_tls_key"},
		{"query_socket = \"query.sock\"\n", "query_socket \"query.sock\": must be an absolute path"},
		{"query_socket = \"/" + strings.Repeat("s", 107) + "\"\n", "longer than the 107 bytes"},
		{"query_anonymous = \"some\"\n", "query_anonymous \"some\": must be \"none\""},
		{"query_all_groups = [\"0\", \"no-such-group-here\"]\n", "query_all_groups \"no-such-group-here\": no such group"},
		{"query_max_handshakes = 0\n", "query_max_handshakes 0: must be between 1 and 4096"},
		{"query_max_handshakes = 100000\n", "query_max_handshakes 100000: must be between 1 and 4096"},
		{"query_max_conns_per_uid = -1\n", "query_max_conns_per_uid -1: must be between 1 and 256"},
		{"query_max_conns_per_uid = 257\n", "query_max_conns_per_uid 257"},
	} {
		_, err := Load([]string{"--config", writeConfig(t, tc.body)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}

// storage picks the ring's default path and whether it is synced, as
// journald's Storage= does; a ring path set explicitly wins.
func TestConfigStorage(t *testing.T) {
	run, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	t.Setenv("RUNTIME_DIRECTORY", run)
	t.Setenv("STATE_DIRECTORY", state)
	volatile, persistent := filepath.Join(run, "ring"), filepath.Join(state, "ring")
	check := func(args []string, ring string, durable bool, flushFrom string) {
		t.Helper()
		c, err := Load(args)
		if err != nil {
			t.Fatal(err)
		}
		if c.Ring != ring || c.durable != durable || c.flushFrom != flushFrom {
			t.Errorf("%q: ring %q durable %v flush from %q, want %q %v %q", args, c.Ring, c.durable, c.flushFrom, ring, durable, flushFrom)
		}
	}
	check(nil, volatile, false, "") // auto, no state directory
	check([]string{"--storage", "volatile"}, volatile, false, "")
	check([]string{"--storage", "persistent"}, persistent, true, volatile)
	check([]string{"--storage", "persistent", "--ring", "/x/ring"}, "/x/ring", true, "")
	check([]string{"--storage", "volatile", "--ring", "/x/ring"}, "/x/ring", false, "")
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	check(nil, persistent, true, volatile) // auto, the state directory exists
	check([]string{"--ring", "/x/ring"}, "/x/ring", true, "")
	check([]string{"--storage", "volatile"}, volatile, false, "")
	check([]string{"--config", writeConfig(t, "storage = \"volatile\"\nsync_interval = \"1s\"\n"), "--sync-interval", "250ms"}, volatile, false, "")

	if _, err := Load([]string{"--storage", "disk"}); err == nil || !strings.Contains(err.Error(), "storage \"disk\"") {
		t.Errorf("--storage disk: err = %v, want it to name storage", err)
	}
	if _, err := Load([]string{"--sync-interval", "0s"}); err == nil || !strings.Contains(err.Error(), "sync_interval 0s") {
		t.Errorf("--sync-interval 0s: err = %v, want it to name sync_interval", err)
	}
}

// TestFlagSpellings: GNU double-dash flags with = or a separate value,
// and the single-dash spellings of earlier versions, which an upgrade
// hands to the new binary unchanged (os.Args).
func TestFlagSpellings(t *testing.T) {
	for _, args := range [][]string{
		{"--ring-size=128KiB", "--log-level", "debug"},
		{"-ring-size", "128KiB", "-log-level=debug"},
		{"--log-level=debug", "-ring-size=128KiB"},
	} {
		c, err := Load(args)
		if err != nil {
			t.Fatalf("Load(%q): %v", args, err)
		}
		if c.RingSize != 128<<10 || c.LogLevel != "debug" {
			t.Errorf("Load(%q): ring_size %v, log_level %q", args, c.RingSize, c.LogLevel)
		}
	}
	if _, err := Load([]string{"--bogus"}); err == nil || !strings.Contains(err.Error(), "--bogus") {
		t.Errorf("Load(--bogus): %v", err)
	}
}
