package forward

import "testing"

// BenchmarkForward forwards b.N records of about 100 bytes from a ring to
// an in-process three-broker cluster (whose work is in the same process:
// bench/forward measures the two apart).
func BenchmarkForward(b *testing.B) {
	for _, comp := range []string{"zstd", "none"} {
		b.Run(comp, func(b *testing.B) {
			c := newCluster(b)
			ring := newTestRing(b, 256<<20)
			ring.add(b, 0, b.N)
			cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Compression: comp, Host: "bench"}
			b.ResetTimer()
			rf := startForwarder(b, cfg)
			rf.waitAcked(b, uint64(b.N))
			b.StopTimer()
			rf.stop(b)
		})
	}
}
