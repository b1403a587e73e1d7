//go:build linux

package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/upgrade"
)

// Socket names, as in systemd's FileDescriptorName= and the upgrade handover.
const (
	NameIngest     = "ingest"
	NameQuery      = "query"       // TCP
	NameQueryLocal = "query-local" // UNIX stream
	NameMetrics    = "metrics"
)

// sockets are the daemon's listening sockets.
type sockets struct {
	ingest     *net.UnixConn
	query      net.Listener // nil when disabled
	queryLocal net.Listener // a *net.UnixListener; nil when disabled
	metrics    net.Listener // nil when disabled
	// bound names the sockets this process bound itself.
	bound map[string]bool
}

// acquireSockets takes the sockets named in files (inherited from an
// upgrade or from systemd) and binds the ones missing. Unknown names are
// closed and logged.
func acquireSockets(cfg *Config, files map[string]*os.File, log *slog.Logger) (*sockets, error) {
	s := &sockets{bound: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	for name, f := range files {
		var err error
		switch name {
		case NameIngest:
			var pc net.PacketConn
			if pc, err = net.FilePacketConn(f); err == nil {
				uc, isUnix := pc.(*net.UnixConn)
				if !isUnix {
					pc.Close()
					err = fmt.Errorf("not a UNIX datagram socket")
				} else {
					s.ingest = uc
					err = dgram.Prepare(uc, dgram.ListenOptions{RecvBuffer: cfg.RecvBuffer})
				}
			}
		case NameQuery:
			s.query, err = net.FileListener(f)
		case NameQueryLocal:
			s.queryLocal, err = unixListener(f)
		case NameMetrics:
			s.metrics, err = net.FileListener(f)
		default:
			log.Warn("closing a passed socket with an unknown name", "name", name)
		}
		f.Close() // the net objects hold their own duplicates
		if err != nil {
			return nil, fmt.Errorf("passed socket %q: %w", name, err)
		}
		log.Debug("using passed socket", "name", name)
	}
	var err error
	if s.ingest == nil {
		s.ingest, err = dgram.Listen(cfg.Socket, dgram.ListenOptions{Mode: cfg.SocketMode, RecvBuffer: cfg.RecvBuffer})
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.Socket, err)
		}
		s.bound[NameIngest] = true
	}
	if s.query == nil && cfg.QueryAddr != "" {
		if s.query, err = net.Listen("tcp", cfg.QueryAddr); err != nil {
			return nil, fmt.Errorf("query server: %w", err)
		}
		s.bound[NameQuery] = true
	}
	if err := deferAccept(s.query); err != nil {
		return nil, fmt.Errorf("query server: %w", err)
	}
	if s.queryLocal == nil && cfg.QuerySocket != "" {
		if s.queryLocal, err = listenLocal(cfg.QuerySocket); err != nil {
			return nil, fmt.Errorf("local query socket: %w", err)
		}
		s.bound[NameQueryLocal] = true
	}
	if s.metrics == nil && cfg.MetricsAddr != "" {
		if s.metrics, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("metrics server: %w", err)
		}
		s.bound[NameMetrics] = true
	}
	ok = true
	return s, nil
}

// named lists the sockets for a handover or the fd store.
func (s *sockets) named() []upgrade.NamedFile {
	files := []upgrade.NamedFile{{Name: NameIngest, File: s.ingest}}
	if l, ok := s.query.(*net.TCPListener); ok {
		files = append(files, upgrade.NamedFile{Name: NameQuery, File: l})
	}
	if l, ok := s.queryLocal.(*net.UnixListener); ok {
		files = append(files, upgrade.NamedFile{Name: NameQueryLocal, File: l})
	}
	if l, ok := s.metrics.(*net.TCPListener); ok {
		files = append(files, upgrade.NamedFile{Name: NameMetrics, File: l})
	}
	return files
}

// deferAcceptSec is how long the kernel holds a TCP query connection that
// has sent nothing before handing it to accept (TCP_DEFER_ACCEPT, systemd's
// DeferAcceptSec=).
const deferAcceptSec = 10

// deferAccept makes the TCP query listener l (nil: none) hand over only
// connections that have sent something, as HAProxy and nginx do: every
// client speaks first (its hello or its TLS ClientHello), so a connection
// that stays silent costs the kernel a SYN_RECV entry and the daemon
// nothing, rather than an accept, a goroutine and a place in the
// handshake budget that a real client then waits for. One still silent
// after deferAcceptSec reaches accept and the handshake budget as before.
// The option belongs to the socket, so it is set on a passed one too.
func deferAccept(l net.Listener) error {
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSec)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_DEFER_ACCEPT: %w", serr)
	}
	return nil
}

// close closes this process's copies; the sockets live on wherever else
// they were passed.
func (s *sockets) close() {
	if s.ingest != nil {
		s.ingest.Close()
	}
	if s.query != nil {
		s.query.Close()
	}
	if s.queryLocal != nil {
		s.queryLocal.Close()
	}
	if s.metrics != nil {
		s.metrics.Close()
	}
}

// closeSockets closes this process's copies of the sockets, and removes the
// socket file when the socket dies with this process.
func (d *daemon) closeSockets() {
	d.socks.close()
	if d.socketFile != "" && !d.handedOver {
		os.Remove(d.socketFile)
	}
}

// checkQueryAccess refuses a query socket that other hosts can reach
// when neither TLS nor tokens guard it, unless QueryInsecure says so. It
// checks the socket's real address, so a socket systemd passed is held to
// the same rule as one from the configuration.
func (d *daemon) checkQueryAccess() error {
	ln := d.socks.query
	if ln == nil {
		return nil
	}
	g := access.Guard{TLS: d.cfg.Query.TLSConfig != nil, Token: len(d.cfg.Query.Tokens) > 0, Insecure: d.cfg.QueryInsecure}
	if err := g.Check(ln.Addr().String()); err != nil {
		return fmt.Errorf("query socket %s: %w", ln.Addr(), err)
	}
	return nil
}
