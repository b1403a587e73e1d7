// Package metrics exports collectord's state to Prometheus.
//
// Everything is read at scrape time from the counters the daemon's parts
// already keep (ingestloop.Stats, shmring.Stats, query.ServerStats,
// UpgradeStats), so metrics cost nothing per datagram. The registry is the
// daemon's own (never the global one) and also carries the standard Go and
// process collectors.
//
// Handler serves /metrics, /healthz and /readyz; it and the registry are
// safe for concurrent scrapes, and every Sources function must be too
// (the daemon's read atomics). Nothing is kept between scrapes.
//
// Samples gives the same figures to the query server's stats requests
// (logctl stats), less those a user who reads only their own records may
// not see.
package metrics
