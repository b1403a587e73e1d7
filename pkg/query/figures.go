package query

// Sample is one figure of a stats reply: a metric as the daemon's metrics
// endpoint exports it, by the same name and labels, with its value. A
// histogram is given as its _count and _sum.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// StatsReply is the body of an s frame: the daemon's figures at one
// moment, as the client's access allows it to see them.
type StatsReply struct {
	// Access is the client's access (AccessAllName or AccessOwnName):
	// with "own" the server leaves out every figure that counts other
	// users' records or connections (see Options.Stats).
	Access string `json:"access"`
	// Time is when the figures were read, in Unix nanoseconds (the
	// server's clock): rates are differences over the difference of two
	// replies' times.
	Time    int64    `json:"time"`
	Samples []Sample `json:"samples"`
}

// Get returns the value of the sample named name whose labels include
// labels (pairs of name and value), and whether there is one.
func (r *StatsReply) Get(name string, labels ...string) (float64, bool) {
	for _, s := range r.Samples {
		if s.Name == name && hasLabels(s.Labels, labels) {
			return s.Value, true
		}
	}
	return 0, false
}

// Sum adds the values of every sample named name.
func (r *StatsReply) Sum(name string) float64 {
	var t float64
	for _, s := range r.Samples {
		if s.Name == name {
			t += s.Value
		}
	}
	return t
}

func hasLabels(have map[string]string, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if have[want[i]] != want[i+1] {
			return false
		}
	}
	return true
}

// DecodeStatsReply parses the body of an s frame. An error wraps
// ErrProtocol.
func DecodeStatsReply(body []byte) (StatsReply, error) {
	var r StatsReply
	if err := decodeJSON(body, &r, false); err != nil {
		return StatsReply{}, protocolErrorf("stats reply: %v", err)
	}
	return r, nil
}
