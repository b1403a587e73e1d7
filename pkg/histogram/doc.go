// Package histogram counts durations into fixed buckets, the way
// Prometheus histograms are exported, without locks and without
// allocating: Observe is a few atomic adds, safe from any number of
// goroutines, and Snapshot reads the counts made cumulative at any time.
// A snapshot taken while observations land may count one in Count and not
// yet in its bucket; every count only grows.
package histogram
