package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/forward"
)

// KafkaConfig is the [kafka] table: forwarding every record to a Kafka
// topic. configs/collectord.toml documents every key. Without the table
// nothing is forwarded.
type KafkaConfig struct {
	Brokers     []string `toml:"brokers"`
	Topic       string   `toml:"topic"`
	Compression string   `toml:"compression"`
	Key         string   `toml:"key"`
	Format      string   `toml:"format"`

	TLS     bool   `toml:"tls"`
	TLSCA   string `toml:"tls_ca"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`

	SASLMechanism    string `toml:"sasl_mechanism"`
	SASLUser         string `toml:"sasl_user"`
	SASLPasswordFile string `toml:"sasl_password_file"`

	Cursor      string    `toml:"cursor"`
	ClientID    string    `toml:"client_id"`
	Linger      Duration  `toml:"linger"`
	MaxBuffered int       `toml:"max_buffered"`
	YieldLag    *Duration `toml:"yield_lag"` // nil: defaultYieldLag
	Nice        *int      `toml:"nice"`      // nil: defaultForwardNice
}

// How the forwarder shares the CPU by default (see forward.Config).
const (
	defaultYieldLag    = Duration(10 * time.Second)
	defaultForwardNice = 10
)

// Validate names the first key with an unacceptable value and the
// accepted range. Files are checked for existence, not read: the
// forwarder process reads them.
func (k *KafkaConfig) Validate() error {
	if len(k.Brokers) == 0 {
		return fmt.Errorf("kafka.brokers: at least one HOST:PORT")
	}
	for _, b := range k.Brokers {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("kafka.brokers %q: must be HOST:PORT", b)
		}
	}
	if err := checkTopic(k.Topic); err != nil {
		return fmt.Errorf("kafka.topic %q: %w", k.Topic, err)
	}
	for _, e := range []struct {
		key, value string
		allowed    []string
	}{
		{"compression", k.Compression, forward.Compressions},
		{"key", k.Key, forward.Keys},
		{"format", k.Format, forward.Formats},
		{"sasl_mechanism", k.SASLMechanism, forward.Mechanisms},
	} {
		if e.value != "" && !slices.Contains(e.allowed, e.value) {
			return fmt.Errorf("kafka.%s %q: must be one of %s", e.key, e.value, strings.Join(e.allowed, ", "))
		}
	}
	switch {
	case (k.TLSCert == "") != (k.TLSKey == ""):
		return fmt.Errorf("kafka.tls_cert %q, kafka.tls_key %q: set both or neither", k.TLSCert, k.TLSKey)
	case k.SASLMechanism != "" && (k.SASLUser == "" || k.SASLPasswordFile == ""):
		return fmt.Errorf("kafka.sasl_mechanism %q: needs sasl_user and sasl_password_file", k.SASLMechanism)
	case k.SASLMechanism == "" && (k.SASLUser != "" || k.SASLPasswordFile != ""):
		return fmt.Errorf("kafka.sasl_user, kafka.sasl_password_file: need sasl_mechanism")
	case k.Cursor != "" && !filepath.IsAbs(k.Cursor):
		return fmt.Errorf("kafka.cursor %q: must be an absolute path", k.Cursor)
	case k.Linger < 0 || k.Linger > Duration(time.Minute):
		return fmt.Errorf("kafka.linger %s: must be between 0 and 1m", k.Linger)
	case k.YieldLag != nil && (*k.YieldLag < 0 || *k.YieldLag > Duration(time.Hour)):
		return fmt.Errorf("kafka.yield_lag %s: must be between 0 (never yield) and 1h", *k.YieldLag)
	case k.Nice != nil && (*k.Nice < 0 || *k.Nice > 19):
		return fmt.Errorf("kafka.nice %d: must be between 0 (the daemon's priority) and 19", *k.Nice)
	case k.MaxBuffered < 0 || k.MaxBuffered > 1_000_000:
		return fmt.Errorf("kafka.max_buffered %d: must be between 1 and 1000000 (0: the default)", k.MaxBuffered)
	}
	for key, path := range map[string]string{"tls_ca": k.TLSCA, "tls_cert": k.TLSCert, "tls_key": k.TLSKey, "sasl_password_file": k.SASLPasswordFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("kafka.%s: %w", key, err)
		}
	}
	return nil
}

// checkTopic applies Kafka's rule for topic names.
func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return errors.New(`must be 1 to 249 characters, and not "." or ".."`)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	return nil
}

// forwardConfig is the forwarder's configuration, or nil without [kafka].
func (c *Config) forwardConfig() *forward.Config {
	k := c.Kafka
	if k == nil {
		return nil
	}
	return &forward.Config{
		Ring: c.Ring, Cursor: k.Cursor, Brokers: k.Brokers, Topic: k.Topic,
		Compression: k.Compression, Key: k.Key, Format: k.Format,
		TLS: k.TLS, TLSCA: k.TLSCA, TLSCert: k.TLSCert, TLSKey: k.TLSKey,
		SASLMechanism: k.SASLMechanism, SASLUser: k.SASLUser, SASLPasswordFile: k.SASLPasswordFile,
		ClientID: k.ClientID, Linger: time.Duration(k.Linger), MaxBuffered: k.MaxBuffered,
		YieldLag: time.Duration(*cmp.Or(k.YieldLag, new(defaultYieldLag))),
		Nice:     *cmp.Or(k.Nice, new(int(defaultForwardNice))),
	}
}
