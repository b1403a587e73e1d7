package forward

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/collectord/collectord/internal/access"
)

// clientOptions builds the Kafka client's options from cfg, reading the
// TLS material and the SASL password. Errors name the file.
//
// The producer is idempotent with acks=all (franz-go's defaults, kept),
// retries a record for as long as the client lives (no delivery timeout:
// a timeout would be a drop), and buffers twice MaxBuffered records so
// that Produce never blocks: the forwarder keeps at most MaxBuffered
// pending itself.
func clientOptions(cfg Config, f *forwarder) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID(cfg.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(2 * cfg.MaxBuffered),
		kgo.ProducerBatchCompression(codec(cfg.Compression)),
		kgo.WithHooks(hooks{f}),
	}
	if cfg.TLS {
		tc, err := access.ClientTLS(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey, "")
		if err != nil {
			return nil, fmt.Errorf("kafka tls: %w", err)
		}
		tc.MinVersion = tls.VersionTLS12 // brokers are not ours: accept what Kafka deployments speak
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASLMechanism != "" {
		m, err := mechanism(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// mechanism reads the SASL password file (its first line) and returns
// the mechanism.
func mechanism(cfg Config) (sasl.Mechanism, error) {
	b, err := os.ReadFile(cfg.SASLPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("kafka sasl_password_file: %w", err)
	}
	pass, _, _ := strings.Cut(string(b), "\n")
	pass = strings.TrimRight(pass, "\r")
	if pass == "" {
		return nil, fmt.Errorf("kafka sasl_password_file %s: empty", cfg.SASLPasswordFile)
	}
	switch cfg.SASLMechanism {
	case "PLAIN":
		return plain.Auth{User: cfg.SASLUser, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: cfg.SASLUser, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: cfg.SASLUser, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka sasl_mechanism %q: want one of %s", cfg.SASLMechanism, strings.Join(Mechanisms, ", "))
}
