package forward

import (
	"bytes"
	"context"
	"strconv"
	"time"
	"unsafe"

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

// outRecord is a Kafka record with room for its headers and value, so
// that a record costs no allocation once the pool is warm. It goes back to
// the pool when its promise has run: the client no longer holds it then.
type outRecord struct {
	kgo.Record // first, so that the promise's *kgo.Record is the outRecord
	headers    [3]kgo.RecordHeader
	seqText    [20]byte
	seq        uint64
}

// maxPooledValue is the largest value buffer kept for reuse.
const maxPooledValue = 64 << 10

// recordOf returns the outRecord whose Record r is.
func recordOf(r *kgo.Record) *outRecord { return (*outRecord)(unsafe.Pointer(r)) }

// encode fills o with the Kafka record for one ring record, and reports
// false when the payload does not decode.
func (e *encoder) encode(o *outRecord, seq uint64, ts int64, payload []byte) bool {
	if err := record.Decode(payload, &e.entry); err != nil {
		return false
	}
	value := o.Value[:0]
	if cap(value) > maxPooledValue {
		value = nil
	}
	o.Record = kgo.Record{
		Timestamp: time.Unix(0, ts),
		// Never cancel a record once handed over: it is done when the
		// brokers acknowledge it, or sent again by a new client.
		Context: context.Background(),
	}
	o.seq = seq
	o.headers = [3]kgo.RecordHeader{
		{Key: HeaderSeq, Value: strconv.AppendUint(o.seqText[:0], seq, 10)},
		{Key: HeaderRingID, Value: e.ringID},
		{Key: HeaderHost, Value: e.host},
	}
	o.Headers = o.headers[:]
	switch e.format {
	case "raw":
		o.Value = append(value, e.entry.Message...)
	default:
		o.Value = e.appendJSON(value, seq, ts)
	}
	switch e.key {
	case "hostname":
		o.Key = e.host
	case "tag":
		if len(e.entry.Tag) > 0 {
			o.Key = bytes.Clone(e.entry.Tag)
		}
	case "uid":
		if e.entry.Flags&record.FlagCreds != 0 {
			o.Key = strconv.AppendUint(nil, uint64(e.entry.UID), 10)
		}
	}
	return true
}

// appendJSON appends the record's JSON object, as `logctl tail -o json`
// prints it, with the host added last.
func (e *encoder) appendJSON(dst []byte, seq uint64, ts int64) []byte {
	dst = record.AppendJSON(dst, seq, ts, &e.entry)
	return append(dst[:len(dst)-1], e.hostJSON...)
}
