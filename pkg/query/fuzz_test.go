package query

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/collectord/collectord/pkg/record"
)

// The fuzz targets cover every decoder of bytes from a peer. Their seed
// corpora live in testdata/fuzz/<Name>; the f.Add seeds below are the same
// shapes built in code.

// fuzzEntries are entries Match is tried on, so that any filter a request
// compiles to is exercised.
var fuzzEntries = func() []record.Entry {
	return []record.Entry{
		{},
		{Priority: 3<<3 | 3, Flags: record.FlagCreds, PID: 4242, UID: 0, Tag: []byte("sshd"), Message: []byte("auth failed"),
			Fields: []record.Field{{Key: []byte("trace_id"), Value: []byte("abc")}}},
		{Priority: 23<<3 | 7, PID: 1, Tag: []byte("cron"), Message: []byte("\xff\xfe not utf-8")},
	}
}()

// sampleBatch is a B frame body with two records.
func sampleBatch() []byte {
	var b batchWriter
	e := fuzzEntries[1]
	b.add(Record{Seq: 7, Time: 1000, Payload: record.AppendEncode(nil, &e)})
	b.add(Record{Seq: 9, Time: 1001, Payload: []byte("raw")})
	return bytes.Clone(b.frame()[frameHeaderSize:])
}

// FuzzDecodeFrame reads a byte stream as client frames, as the server does.
// Every frame read must fit the limit and re-encode to the bytes it was
// read from; a stream that ends mid-frame must say so.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameHello, []byte(`{"protocol":1}`)))
	f.Add(AppendFrame(AppendFrame(nil, FrameQuery, []byte(`{"n":5}`)), FrameCancel, nil))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'Q'})
	f.Add(AppendFrame(nil, FrameQuery, []byte(`{"n":5}`))[:7])
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data), MaxClientFrame)
		var again []byte
		for {
			typ, body, err := fr.Next()
			if err != nil {
				if len(data) > len(again) && err == io.EOF {
					t.Fatalf("EOF with %d bytes unread", len(data)-len(again))
				}
				n := uint64(0)
				if rest := data[len(again):]; len(rest) >= 4 {
					n = uint64(binary.LittleEndian.Uint32(rest))
				}
				if errors.Is(err, ErrFrameTooLarge) != (n > MaxClientFrame) {
					t.Fatalf("length %d: err %v", n, err)
				}
				return
			}
			if len(body)+1 > MaxClientFrame {
				t.Fatalf("frame of %d bytes over the limit", len(body)+1)
			}
			again = AppendFrame(again, typ, body)
			if !bytes.HasPrefix(data, again) {
				t.Fatalf("re-encoded frames differ from the input")
			}
		}
	})
}

// FuzzDecodeBatch parses B frame bodies. A body that parses must re-encode
// exactly, header included, with strictly increasing sequence numbers.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(sampleBatch())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0})
	f.Add(sampleBatch()[:30])
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := ParseBatch(body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		var w batchWriter
		w.reset()
		var prev uint64
		n := b.Len()
		for r, ok := b.Next(); ok; r, ok = b.Next() {
			if r.Seq <= prev {
				t.Fatalf("seq %d after %d", r.Seq, prev)
			}
			prev = r.Seq
			w.add(r)
			n--
		}
		if n != 0 || b.Len() != 0 {
			t.Fatalf("Len was off by %d", n)
		}
		if again, want := w.frame(), AppendFrame(nil, FrameBatch, body); !bytes.Equal(again, want) {
			t.Fatalf("re-encoded %x, want %x", again, want)
		}
	})
}

// FuzzDecodeLost parses L frame bodies.
func FuzzDecodeLost(f *testing.F) {
	f.Add(AppendLost(nil, 12, 345))
	f.Add(AppendLost(nil, 0, 1))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		lost, next, err := ParseLost(body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if next == 0 || !bytes.Equal(AppendLost(nil, lost, next), body) {
			t.Fatalf("lost %d next %d from %x", lost, next, body)
		}
	})
}

// FuzzDecodeRequest decodes and compiles Q frame bodies, as the server
// does, and runs what compiles against a few entries. A request that
// decodes must survive a round trip through JSON.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"id":1,"n":100,"after":5000,"follow":true,"filter":{"priority":3,"facility":[4,10],"tag":"sshd","pid":4242,"uid":0,"since":1764023471000000000,"until":1764027071000000000,"fields":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"grep":"fail(ed|ure)"},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"n":-1}`))
	f.Add([]byte(`{"filter":{"grep":"("}}`))
	f.Add([]byte(`{"filter":{"bogus":1}}`))
	f.Add([]byte(`{"id":2,"filter":{"fields":{"a":"b","c":""}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := DecodeRequest(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			return
		}
		for i := range fuzzEntries {
			q.Filter.Match(int64(i), &fuzzEntries[i])
		}
		enc := marshalJSON(q)
		q2, err := DecodeRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", enc, err)
		}
		if enc2 := marshalJSON(q2); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed %s into %s", enc, enc2)
		}
		for i := range fuzzEntries {
			if q.Filter.Match(int64(i), &fuzzEntries[i]) != q2.Filter.Match(int64(i), &fuzzEntries[i]) {
				t.Fatalf("round trip changed the filter's verdict on entry %d", i)
			}
		}
	})
}

// FuzzDecodeHello decodes H frame bodies, as the server does.
func FuzzDecodeHello(f *testing.F) {
	f.Add([]byte(`{"protocol":1,"client":"logctl","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`))
	f.Add([]byte(`{"client":"x"}`))
	f.Add([]byte(`{"protocol":2,"future":true}`))
	f.Add([]byte(`{"protocol":1,"client":"logctl","token":"0123456789abcdef"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := DecodeHello(body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		h2, err := DecodeHello(marshalJSON(h))
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
	})
}

// FuzzDecodeResponse reads a byte stream as a client reads a response:
// frames, then batches, losses, pings, end and error bodies, with the
// client's ordering checks. Whatever the server sends, the handler sees
// strictly increasing sequence numbers.
func FuzzDecodeResponse(f *testing.F) {
	var resp []byte
	resp = AppendFrame(resp, FrameWelcome, []byte(`{"protocol":1,"server":"collectord","ring_id":"1890b7c1d2e3f4a5","head":1234,"oldest":17,"max_n":1000000}`))
	resp = AppendFrame(resp, FrameBatch, sampleBatch())
	resp = AppendFrame(resp, FrameLost, AppendLost(nil, 3, 13))
	resp = AppendFrame(resp, FramePing, nil)
	resp = AppendFrame(resp, FrameEnd, []byte(`{"id":1,"cursor":5100,"reason":"done"}`))
	f.Add(resp)
	f.Add(AppendFrame(nil, FrameError, []byte(`{"id":1,"code":"busy","message":"too many connections (256)","retry_after_ms":1000}`)))
	f.Add(AppendFrame(AppendFrame(nil, FrameBatch, sampleBatch()), FrameBatch, sampleBatch()))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last uint64
		h := Handler{
			Record: func(r Record) error {
				if r.Seq <= last {
					t.Fatalf("record %d after %d", r.Seq, last)
				}
				last = r.Seq
				return nil
			},
			Lost: func(lost, next uint64) error {
				if next <= last {
					t.Fatalf("lost %d up to %d after %d", lost, next, last)
				}
				last = next - 1
				return nil
			},
		}
		s := stream{h: &h}
		fr := NewFrameReader(bytes.NewReader(data), MaxServerFrame)
		for {
			typ, body, err := fr.Next()
			if err != nil {
				return
			}
			if typ == FrameWelcome {
				DecodeHelloReply(body)
				continue
			}
			end, done, err := s.handle(typ, body)
			if err != nil {
				var xe *Error
				if !errors.Is(err, ErrProtocol) && !errors.As(err, &xe) {
					t.Fatalf("error %v is neither a protocol error nor an *Error", err)
				}
				return
			}
			if done {
				if end.Cursor < last {
					t.Fatalf("end cursor %d before %d", end.Cursor, last)
				}
				return
			}
		}
	})
}
