package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/ingest"
	"github.com/collectord/collectord/pkg/shmring"
)

// recommendedQlen is the net.unix.max_dgram_qlen systemd sets at boot; the
// kernel default of 10 makes a busy collector drop or stall senders.
const recommendedQlen = 512

// Run serves until ctx is done: it opens (or creates) the ring, binds the
// datagram socket and ingests. On return the ring is closed intact and its
// sequence continues at the next start.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	dirMode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		dirMode = 0o755
	}
	for _, dir := range []string{filepath.Dir(cfg.Ring), filepath.Dir(cfg.Socket)} {
		if err := rundir.Ensure(dir, dirMode); err != nil {
			return err
		}
	}

	w, err := shmring.OpenWriter(cfg.Ring, shmring.Options{Size: uint64(cfg.RingSize), Mode: os.FileMode(cfg.RingMode)})
	if err != nil {
		return err
	}
	defer w.Close()
	rs, st := w.Recovered(), w.Stats()
	log.Info("ring open", "path", cfg.Ring, "size", Size(st.Size).String(), "created", rs.Created,
		"records", rs.Records, "damaged", rs.Damaged, "adopted", rs.Unpublished, "rebuilt", rs.Rebuilt, "next_seq", st.Head)

	conn, err := dgram.Listen(cfg.Socket, dgram.ListenOptions{Mode: os.FileMode(cfg.SocketMode), RecvBuffer: int(cfg.RecvBuffer)})
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Socket, err)
	}
	defer func() {
		conn.Close()
		os.Remove(cfg.Socket)
	}()
	if qlen, err := dgram.MaxDgramQlen(); err == nil && qlen < recommendedQlen {
		log.Warn("net.unix.max_dgram_qlen is low: senders will block or drop under load; install deploy/sysctl.d/50-collectord.conf",
			"max_dgram_qlen", qlen, "recommended", recommendedQlen)
	}

	in, err := ingest.New(conn, w, ingest.Options{BatchSize: cfg.Batch, MaxMessage: cfg.maxMessage(), Logger: log})
	if err != nil {
		return err
	}
	log.Info("collectord ready", "socket", cfg.Socket, "pid", os.Getpid())
	err = in.Run(ctx)
	s := in.Stats()
	var total uint64
	for _, n := range s.Datagrams {
		total += n
	}
	log.Info("collectord stopping", "stored", total, "next_seq", w.Stats().Head)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
