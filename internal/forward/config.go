package forward

import (
	"cmp"
	"time"
)

// Values of the configuration's enumerations.
var (
	Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	Keys         = []string{"hostname", "tag", "uid", "none"}
	Formats      = []string{"json", "raw"}
	Mechanisms   = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
)

// Defaults used for zero Config fields.
const (
	DefaultCompression      = "zstd"
	DefaultKey              = "hostname"
	DefaultFormat           = "json"
	DefaultLinger           = 10 * time.Millisecond
	DefaultMaxBuffered      = 10000
	DefaultClientID         = "collectord"
	DefaultStallTimeout     = 30 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerMin       = time.Second
	DefaultBreakerMax       = time.Minute
	// CursorSuffix names the cursor file beside the ring by default.
	CursorSuffix = ".kafka-cursor"
)

// Config is what the forwarder needs, in plain values: collectord's
// configuration checks them ([kafka] in the TOML file) and passes them to
// the forwarder process as JSON. The zero value of each optional field
// means its default. Files (TLS material, the SASL password) are named,
// not read: the forwarder reads them, so that the daemon never holds the
// cluster's credentials.
type Config struct {
	Ring    string   `json:"ring"`             // the ring file to forward
	Cursor  string   `json:"cursor,omitempty"` // default Ring + CursorSuffix
	Brokers []string `json:"brokers"`          // HOST:PORT of seed brokers
	Topic   string   `json:"topic"`

	Compression string `json:"compression,omitempty"` // one of Compressions; default zstd
	Key         string `json:"key,omitempty"`         // one of Keys: the partitioning key; default hostname
	Format      string `json:"format,omitempty"`      // one of Formats; default json
	// Host is this host's name, in the JSON value, the headers and the
	// hostname key. Default os.Hostname.
	Host string `json:"host,omitempty"`

	TLS     bool   `json:"tls,omitempty"`      // speak TLS (also implied by any TLS file)
	TLSCA   string `json:"tls_ca,omitempty"`   // CAs for the brokers' certificates; default the system's
	TLSCert string `json:"tls_cert,omitempty"` // client certificate, with TLSKey
	TLSKey  string `json:"tls_key,omitempty"`

	SASLMechanism    string `json:"sasl_mechanism,omitempty"` // one of Mechanisms; "" for none
	SASLUser         string `json:"sasl_user,omitempty"`
	SASLPasswordFile string `json:"sasl_password_file,omitempty"`

	ClientID    string        `json:"client_id,omitempty"`    // default DefaultClientID
	Linger      time.Duration `json:"linger,omitempty"`       // how long a batch waits to fill; default 10ms
	MaxBuffered int           `json:"max_buffered,omitempty"` // records handed to the client and not acknowledged; default 10000
	// StallTimeout is how long records may wait for an acknowledgement
	// before the wait counts as a failure of the cluster. Default 30s.
	StallTimeout time.Duration `json:"stall_timeout,omitempty"`
	// BreakerThreshold is how many consecutive failures open the circuit
	// breaker. Default 5.
	BreakerThreshold int `json:"breaker_threshold,omitempty"`
	// BreakerMin and BreakerMax bound how long the breaker stays open;
	// each time it opens again without a success in between, it waits
	// twice as long. Defaults 1s and 1m.
	BreakerMin time.Duration `json:"breaker_min,omitempty"`
	BreakerMax time.Duration `json:"breaker_max,omitempty"`
	// YieldLag and Nice set how the cold path shares the CPU with the hot
	// one. While the forwarder is less than YieldLag behind (the age of
	// the oldest record not acknowledged), it runs under SCHED_IDLE, only
	// on CPU that ingest and queries leave, and sends nothing while
	// records arrive faster than 20,000/s: a burst of logs is taken in at
	// full speed and forwarded a moment later. Once it falls
	// YieldLag behind it runs at nice value Nice, taking its share, until
	// it is back under half of YieldLag. Zero YieldLag never yields: the
	// forwarder always runs at Nice. collectord's configuration defaults
	// to 10s and 10.
	YieldLag time.Duration `json:"yield_lag,omitempty"`
	Nice     int           `json:"nice,omitempty"`
}

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	c.Cursor = cmp.Or(c.Cursor, c.Ring+CursorSuffix)
	c.Compression = cmp.Or(c.Compression, DefaultCompression)
	c.Key = cmp.Or(c.Key, DefaultKey)
	c.Format = cmp.Or(c.Format, DefaultFormat)
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.Linger = cmp.Or(c.Linger, DefaultLinger)
	c.MaxBuffered = cmp.Or(c.MaxBuffered, DefaultMaxBuffered)
	c.StallTimeout = cmp.Or(c.StallTimeout, DefaultStallTimeout)
	c.BreakerThreshold = cmp.Or(c.BreakerThreshold, DefaultBreakerThreshold)
	c.BreakerMin = cmp.Or(c.BreakerMin, DefaultBreakerMin)
	c.BreakerMax = cmp.Or(c.BreakerMax, DefaultBreakerMax)
	c.TLS = c.TLS || c.TLSCA != "" || c.TLSCert != ""
	return c
}
