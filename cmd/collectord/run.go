package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/daemon"
	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/internal/tracing"
	"github.com/collectord/collectord/pkg/query"
)

// Run serves with cfg until ctx is done or an upgrade (a value on reload)
// has handed over to a new process.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reload <-chan struct{}) error {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("in-place upgrades disabled: cannot find our executable", "err", err)
		exe = ""
	}
	gid, err := cfg.ringGID()
	if err != nil {
		return err
	}
	qopts, err := cfg.queryAccess(log)
	if err != nil {
		return err
	}
	tp, shutdownTracing, err := tracing.Setup(ctx, "collectord")
	if err != nil {
		log.Warn("tracing disabled: bad OTEL_* configuration", "err", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	return daemon.Run(ctx, daemon.Config{
		Socket:       cfg.Socket,
		SocketMode:   os.FileMode(cfg.SocketMode),
		RecvBuffer:   int(cfg.RecvBuffer),
		MaxMessage:   cfg.maxMessage(),
		Batch:        cfg.Batch,
		Ring:         cfg.Ring,
		RingSize:     uint64(cfg.RingSize),
		RingMode:     os.FileMode(cfg.RingMode),
		RingGroup:    gid,
		Durable:      cfg.durable,
		SyncInterval: time.Duration(cfg.SyncInterval),
		FlushFrom:    cfg.flushFrom,
		QueryAddr:    cfg.QueryAddr,
		QuerySocket:  cfg.QuerySocket,
		MetricsAddr:  cfg.MetricsAddr,
		PIDFile:      cfg.PIDFile,
		Forward:      cfg.forwardConfig(),
		Query:        qopts,
		RateLimit: ingestloop.RateLimit{
			Burst:    cfg.RateLimitBurst,
			Interval: time.Duration(cfg.RateLimitInterval),
		},

		QueryInsecure: cfg.QueryInsecure,
		Exe:           exe,
		Args:          os.Args,
		Logger:        log,

		TracerProvider: tp,
	}, reload)
}

// queryAccess reads the query server's TLS material and tokens. Errors
// name the configuration key.
func (c *Config) queryAccess(log *slog.Logger) (query.Options, error) {
	opts := query.Options{AnonymousAll: c.QueryAnonymous == anonymousAll,
		MaxHandshakes: c.QueryMaxHandshakes, MaxConnsPerUID: c.QueryMaxConnsPerUID}
	var err error
	if opts.ReaderGroups, err = c.allGroups(); err != nil {
		return opts, err
	}
	if c.QueryTLSCert != "" {
		tc, err := access.ServerTLS(c.QueryTLSCert, c.QueryTLSKey, c.QueryTLSClientCA)
		if err != nil {
			return opts, fmt.Errorf("query_tls_cert/query_tls_key/query_tls_client_ca: %w", err)
		}
		opts.TLSConfig = tc
	}
	if c.QueryTokenFile != "" {
		tokens, warn, err := access.ReadTokens(c.QueryTokenFile)
		if err != nil {
			return opts, fmt.Errorf("query_token_file: %w", err)
		}
		if warn != "" {
			log.Warn("query_token_file: " + warn)
		}
		if c.queryGuard().CleartextToken(c.QueryAddr) {
			log.Warn("query tokens without TLS cross the network in clear; set query_tls_cert and query_tls_key", "query_addr", c.QueryAddr)
		}
		opts.Tokens = tokens
	}
	return opts, nil
}
