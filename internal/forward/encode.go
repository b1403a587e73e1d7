package forward

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/collectord/collectord/pkg/record"
)

// encoder turns ring records into Kafka records. It belongs to the
// producing goroutine; the Kafka records it returns are new, owned by the
// client until their promise runs.
type encoder struct {
	format string
	key    string
	host   []byte
	ringID []byte

	hostJSON []byte // `,"host":"..."}`, spliced into the JSON value
	entry    record.Entry
}

func newEncoder(cfg Config, ringID string) *encoder {
	e := &encoder{format: cfg.Format, key: cfg.Key, host: []byte(cfg.Host), ringID: []byte(ringID)}
	e.hostJSON = append(record.AppendJSONString([]byte(`,"host":`), e.host), '}')
	return e
}

// HeaderSeq, HeaderRingID and HeaderHost name the headers every record
// carries: with them a consumer drops duplicates by (ring id, seq).
const (
	HeaderSeq    = "seq"
	HeaderRingID = "ring_id"
	HeaderHost   = "host"
)

// encode returns the Kafka record for one ring record, or false when its
// payload does not decode.
func (e *encoder) encode(seq uint64, ts int64, payload []byte) (*kgo.Record, bool) {
	if err := record.Decode(payload, &e.entry); err != nil {
		return nil, false
	}
	r := &kgo.Record{
		Timestamp: time.Unix(0, ts),
		// Never cancel a record once handed over: it is done when the
		// brokers acknowledge it, or sent again by a new client.
		Context: context.Background(),
		Headers: []kgo.RecordHeader{
			{Key: HeaderSeq, Value: strconv.AppendUint(nil, seq, 10)},
			{Key: HeaderRingID, Value: e.ringID},
			{Key: HeaderHost, Value: e.host},
		},
	}
	switch e.format {
	case "raw":
		r.Value = bytes.Clone(e.entry.Message)
	default:
		r.Value = e.appendJSON(make([]byte, 0, 256+2*len(payload)), seq, ts)
	}
	switch e.key {
	case "hostname":
		r.Key = e.host
	case "tag":
		if len(e.entry.Tag) > 0 {
			r.Key = bytes.Clone(e.entry.Tag)
		}
	case "uid":
		if e.entry.Flags&record.FlagCreds != 0 {
			r.Key = strconv.AppendUint(nil, uint64(e.entry.UID), 10)
		}
	}
	return r, true
}

// appendJSON appends the record's JSON object, as `logctl tail -o json`
// prints it, with the host added last.
func (e *encoder) appendJSON(dst []byte, seq uint64, ts int64) []byte {
	dst = record.AppendJSON(dst, seq, ts, &e.entry)
	return append(dst[:len(dst)-1], e.hostJSON...)
}
