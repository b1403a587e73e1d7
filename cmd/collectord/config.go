package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/cmdline"
	"github.com/collectord/collectord/internal/daemon"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/bytesize"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// Config is collectord's configuration: defaults, then the file named by
// --config, then flags. configs/collectord.toml documents every key.
type Config struct {
	Socket       string   `toml:"socket"`
	SocketMode   FileMode `toml:"socket_mode"`
	RecvBuffer   Size     `toml:"recv_buffer"`
	MaxMessage   Size     `toml:"max_message"`
	Batch        int      `toml:"batch"`
	Ring         string   `toml:"ring"` // "": by storage
	Storage      string   `toml:"storage"`
	SyncInterval Duration `toml:"sync_interval"`
	RingSize     Size     `toml:"ring_size"`
	RingMode     FileMode `toml:"ring_mode"`
	RingGroup    string   `toml:"ring_group"`
	QueryAddr    string   `toml:"query_addr"`
	QuerySocket  string   `toml:"query_socket"`
	MetricsAddr  string   `toml:"metrics_addr"`
	LogLevel     string   `toml:"log_level"`
	PIDFile      string   `toml:"pid_file"`

	RateLimitBurst    int      `toml:"rate_limit_burst"`
	RateLimitInterval Duration `toml:"rate_limit_interval"`

	QueryTLSCert     string `toml:"query_tls_cert"`
	QueryTLSKey      string `toml:"query_tls_key"`
	QueryTLSClientCA string `toml:"query_tls_client_ca"`
	QueryTokenFile   string `toml:"query_token_file"`
	QueryInsecure    bool   `toml:"query_insecure"`
	// QueryAnonymous is what a network client that proves nothing reads:
	// "none" (refused) or "all".
	QueryAnonymous string `toml:"query_anonymous"`
	// QueryAllGroups are groups (names or numbers) whose members read every
	// record on the local query socket, besides the ring's group.
	QueryAllGroups []string `toml:"query_all_groups"`
	// QueryMaxHandshakes is the query server's budget of TCP connections
	// still in their handshake (query.Options.MaxHandshakes).
	QueryMaxHandshakes int `toml:"query_max_handshakes"`
	// QueryMaxConnsPerUID is how many local socket connections one user
	// may hold (query.Options.MaxConnsPerUID).
	QueryMaxConnsPerUID int `toml:"query_max_conns_per_uid"`

	Kafka *KafkaConfig `toml:"kafka"` // nil: no forwarding

	// Set by Load from Storage and Ring (resolveStorage).
	durable   bool   // the ring is on a disk: sync it
	flushFrom string // the volatile ring to move into the persistent one; "" for none
}

// Storage values, as journald's Storage=.
const (
	StorageVolatile   = "volatile"   // the ring in memory (/run): lost at reboot
	StoragePersistent = "persistent" // the ring on a disk, synced
	StorageAuto       = "auto"       // persistent when rundir.StateDir exists
)

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Socket:     rundir.Socket(),
		SocketMode: 0o666,
		RecvBuffer: 8 << 20,
		Batch:      64,
		RingSize:   shmring.DefaultSize,
		RingMode:   0o640,
		Storage:    StorageAuto,

		SyncInterval: Duration(daemon.DefaultSyncInterval),

		RateLimitInterval:   Duration(30 * time.Second),
		QueryAddr:           rundir.QueryAddr,
		QuerySocket:         rundir.QuerySocket(),
		QueryAnonymous:      anonymousNone,
		QueryMaxHandshakes:  query.DefaultMaxHandshakes,
		QueryMaxConnsPerUID: query.DefaultMaxConnsPerUID,
		MetricsAddr:         rundir.MetricsAddr,
		LogLevel:            "info",
	}
}

// maxMessage is the effective max_message: as configured, or by default
// 256KiB, or an eighth of the ring less 1KiB when that is smaller.
func (c *Config) maxMessage() int {
	if c.MaxMessage != 0 {
		return int(c.MaxMessage)
	}
	return int(min(256<<10, uint64(c.RingSize)/8-1024))
}

// loadFile applies the TOML file at path over c. Unknown keys are errors.
func (c *Config) loadFile(path string) error {
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("config %s: %s", path, perr.ErrorWithPosition())
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// Validate names the first field with an unacceptable value and the
// accepted range.
func (c *Config) Validate() error {
	switch {
	case c.Socket == "" || !filepath.IsAbs(c.Socket):
		return fmt.Errorf("socket %q: must be an absolute path", c.Socket)
	case len(c.Socket) > maxSocketPath:
		return fmt.Errorf("socket %q: longer than the %d bytes a UNIX socket path may have", c.Socket, maxSocketPath)
	case c.QuerySocket != "" && !filepath.IsAbs(c.QuerySocket):
		return fmt.Errorf("query_socket %q: must be an absolute path (or empty to disable)", c.QuerySocket)
	case len(c.QuerySocket) > maxSocketPath:
		return fmt.Errorf("query_socket %q: longer than the %d bytes a UNIX socket path may have", c.QuerySocket, maxSocketPath)
	case c.QueryAnonymous != anonymousNone && c.QueryAnonymous != anonymousAll:
		return fmt.Errorf("query_anonymous %q: must be %q (refuse network clients without a certificate or token) or %q (show them every record)", c.QueryAnonymous, anonymousNone, anonymousAll)
	case c.QueryMaxHandshakes < 1 || c.QueryMaxHandshakes > maxQueryHandshakes:
		return fmt.Errorf("query_max_handshakes %d: must be between 1 and %d", c.QueryMaxHandshakes, maxQueryHandshakes)
	case c.QueryMaxConnsPerUID < 1 || c.QueryMaxConnsPerUID > query.DefaultMaxConns:
		return fmt.Errorf("query_max_conns_per_uid %d: must be between 1 and %d (all the connections the server serves)", c.QueryMaxConnsPerUID, query.DefaultMaxConns)
	case c.SocketMode > 0o777:
		return fmt.Errorf("socket_mode %o: must be a permission between 0 and 0777", c.SocketMode)
	case c.RecvBuffer < 4096 || c.RecvBuffer > 1<<30:
		return fmt.Errorf("recv_buffer %s: must be between 4KiB and 1GiB", c.RecvBuffer)
	case c.MaxMessage != 0 && (c.MaxMessage < 1024 || c.MaxMessage > 16<<20):
		return fmt.Errorf("max_message %s: must be between 1KiB and 16MiB", c.MaxMessage)
	case c.Batch < 1 || c.Batch > 1024:
		return fmt.Errorf("batch %d: must be between 1 and 1024", c.Batch)
	case c.Ring != "" && !filepath.IsAbs(c.Ring):
		return fmt.Errorf("ring %q: must be an absolute path (or empty: chosen by storage)", c.Ring)
	case c.Storage != StorageVolatile && c.Storage != StoragePersistent && c.Storage != StorageAuto:
		return fmt.Errorf("storage %q: must be volatile, persistent or auto", c.Storage)
	case c.SyncInterval < Duration(10*time.Millisecond) || c.SyncInterval > Duration(time.Hour):
		return fmt.Errorf("sync_interval %s: must be between 10ms and 1h", c.SyncInterval)
	case c.RingSize < shmring.MinSize || c.RingSize > shmring.MaxSize || c.RingSize&(c.RingSize-1) != 0:
		return fmt.Errorf("ring_size %s: must be a power of two between 64KiB and 1TiB", c.RingSize)
	case c.MaxMessage != 0 && uint64(c.MaxMessage) > uint64(c.RingSize)/8-1024:
		return fmt.Errorf("max_message %s: must be at most an eighth of ring_size (%s) less 1KiB", c.MaxMessage, c.RingSize)
	case c.RingMode > 0o777:
		return fmt.Errorf("ring_mode %o: must be a permission between 0 and 0777", c.RingMode)
	}
	for name, addr := range map[string]string{"query_addr": c.QueryAddr, "metrics_addr": c.MetricsAddr} {
		if addr == "" {
			continue // disabled
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%s %q: must be HOST:PORT (or empty to disable)", name, addr)
		}
	}
	if _, err := c.ringGID(); err != nil {
		return err
	}
	if _, err := c.allGroups(); err != nil {
		return err
	}
	switch {
	case c.RateLimitBurst < 0:
		return fmt.Errorf("rate_limit_burst %d: must be 0 (off) or more", c.RateLimitBurst)
	case c.RateLimitBurst > 0 && (c.RateLimitInterval < Duration(time.Millisecond) || c.RateLimitInterval > Duration(time.Hour)):
		return fmt.Errorf("rate_limit_interval %s: must be between 1ms and 1h when rate_limit_burst is set", c.RateLimitInterval)
	case (c.QueryTLSCert == "") != (c.QueryTLSKey == ""):
		return fmt.Errorf("query_tls_cert %q, query_tls_key %q: set both or neither", c.QueryTLSCert, c.QueryTLSKey)
	case c.QueryTLSClientCA != "" && c.QueryTLSCert == "":
		return fmt.Errorf("query_tls_client_ca %q: needs query_tls_cert and query_tls_key (mutual TLS is TLS)", c.QueryTLSClientCA)
	}
	if c.QueryAddr != "" {
		if err := c.queryGuard().Check(c.QueryAddr); err != nil {
			return fmt.Errorf("query_addr %q: %w", c.QueryAddr, err)
		}
	}
	if c.Kafka != nil {
		if err := c.Kafka.Validate(); err != nil {
			return err
		}
	}
	if c.PIDFile != "" && !filepath.IsAbs(c.PIDFile) {
		return fmt.Errorf("pid_file %q: must be an absolute path", c.PIDFile)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("log_level %q: must be debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// queryGuard is what the configuration puts in front of the query server.
func (c *Config) queryGuard() access.Guard {
	return access.Guard{TLS: c.QueryTLSCert != "", Token: c.QueryTokenFile != "", Insecure: c.QueryInsecure}
}

// maxSocketPath is the longest path a UNIX socket may be bound to.
const maxSocketPath = 107

// maxQueryHandshakes bounds query_max_handshakes: each such connection
// holds a descriptor and a goroutine.
const maxQueryHandshakes = 4096

// The values of query_anonymous.
const (
	anonymousNone = "none"
	anonymousAll  = "all"
)

// ringGID resolves ring_group, a group name or number; 0 when unset.
func (c *Config) ringGID() (int, error) {
	if c.RingGroup == "" {
		return 0, nil
	}
	gid, err := lookupGroup(c.RingGroup)
	if err != nil {
		return 0, fmt.Errorf("ring_group %q: %w", c.RingGroup, err)
	}
	return int(gid), nil
}

// allGroups resolves query_all_groups.
func (c *Config) allGroups() ([]uint32, error) {
	gids := make([]uint32, 0, len(c.QueryAllGroups))
	for _, name := range c.QueryAllGroups {
		gid, err := lookupGroup(name)
		if err != nil {
			return nil, fmt.Errorf("query_all_groups %q: %w", name, err)
		}
		gids = append(gids, gid)
	}
	return gids, nil
}

// lookupGroup resolves a group name or number.
func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 31); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, errors.New("no such group (a group name or number)")
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("group id %q is not a number", g.Gid)
	}
	return uint32(gid), nil
}

// Load builds the configuration from defaults, the --config file and the
// flags in args, in that order, and validates it.
func Load(args []string) (Config, error) {
	c := Defaults()
	var configPath string
	fs := newFlagSet(&c, &configPath)
	if err := cmdline.Parse(fs, args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if configPath != "" {
		// Apply the file over the defaults, then the flags again over the
		// file: flags win.
		c = Defaults()
		if err := c.loadFile(configPath); err != nil {
			return Config{}, err
		}
		if err := cmdline.Parse(newFlagSet(&c, &configPath), args); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		if configPath != "" {
			return Config{}, fmt.Errorf("config %s: %w", configPath, err)
		}
		return Config{}, err
	}
	c.resolveStorage()
	return c, nil
}

// resolveStorage turns storage and ring into the ring's path and whether
// it is synced, as journald reads Storage=: persistent keeps the ring on a
// disk (rundir.PersistentRing) and syncs it; volatile keeps it in memory
// (rundir.VolatileRing); auto is persistent when rundir.StateDir exists
// (systemd's StateDirectory= made it, or an administrator did). A ring
// path set in the configuration wins over both defaults; storage then
// says only whether it is synced.
//
// With persistent storage and the default path, a ring left at the
// volatile path (by a start before /var was mounted, or while storage was
// volatile) is moved into the persistent one at start.
func (c *Config) resolveStorage() {
	storage := c.Storage
	if storage == StorageAuto {
		storage = StorageVolatile
		if st, err := os.Stat(rundir.StateDir()); err == nil && st.IsDir() {
			storage = StoragePersistent
		}
	}
	c.durable = storage == StoragePersistent
	switch {
	case c.Ring != "":
	case c.durable:
		c.Ring, c.flushFrom = rundir.PersistentRing(), rundir.VolatileRing()
	default:
		c.Ring = rundir.VolatileRing()
	}
}

// newFlagSet binds collectord's flags to c and configPath: the one
// definition that parsing, --help and the man page use. Each flag
// overrides the configuration key of the same name (with _ for -).
func newFlagSet(c *Config, configPath *string) *pflag.FlagSet {
	fs := cmdline.NewFlagSet("collectord")
	fs.StringVar(configPath, "config", *configPath, "configuration `FILE` (TOML; see collectord.toml in the sources)")
	fs.StringVar(&c.Socket, "socket", c.Socket, "datagram socket `PATH`")
	fs.StringVar(&c.Ring, "ring", c.Ring, "ring file `PATH` (default: chosen by --storage)")
	fs.StringVar(&c.Storage, "storage", c.Storage, "where the ring lives: `volatile` (memory), persistent (disk, synced) or auto (persistent when its directory exists)")
	fs.Var(typed{&c.SyncInterval, "duration"}, "sync-interval", "how often a persistent ring is synced to disk (`DURATION`)")
	fs.Var(typed{&c.RingSize, "size"}, "ring-size", "ring data `SIZE` (power of two, e.g. 64MiB)")
	fs.StringVar(&c.RingGroup, "ring-group", c.RingGroup, "readers' `GROUP` (name or number) given the ring and its directory")
	fs.StringVar(&c.QueryAddr, "query-addr", c.QueryAddr, "query server `HOST:PORT` (empty: off)")
	fs.StringVar(&c.QuerySocket, "query-socket", c.QuerySocket, "local query socket `PATH` (empty: off)")
	fs.StringVar(&c.QueryAnonymous, "query-anonymous", c.QueryAnonymous, "what network clients without a certificate or token read: `none` or all")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "metrics server `HOST:PORT` (empty: off)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "self-log `LEVEL`: debug, info, warn, error")
	fs.StringVar(&c.PIDFile, "pid-file", c.PIDFile, "write the serving process's pid to `PATH` (atomically, also after an upgrade)")
	return fs
}

// typed gives a flag value the type name pflag shows.
type typed struct {
	value interface {
		String() string
		Set(string) error
	}
	name string
}

func (t typed) String() string     { return t.value.String() }
func (t typed) Set(s string) error { return t.value.Set(s) }
func (t typed) Type() string       { return t.name }

// Size is a byte count in the configuration: "64MiB" or a number.
type Size = bytesize.Size

// Duration is a time span written as Go writes one: "30s", "1m30s".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// Set accepts a duration string on the command line.
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// UnmarshalText accepts a duration string in the config file.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit such as \"30s\" or \"1m\"", b)
	}
	*d = Duration(v)
	return nil
}

// FileMode is a permission written in octal: "0666".
type FileMode uint32

// UnmarshalText accepts an octal string in the config file.
func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("mode %q: want an octal permission such as \"0640\"", b)
	}
	*m = FileMode(v)
	return nil
}
