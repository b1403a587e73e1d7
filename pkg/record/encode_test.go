package record

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func sampleEntry() *Entry {
	return &Entry{
		Format:     FormatRFC5424,
		Flags:      FlagCreds | FlagInvalidUTF8,
		Priority:   13,
		PID:        0x01020304,
		UID:        1000,
		GID:        100,
		ClaimedPID: 4242,
		SourceTime: -2,
		Hostname:   []byte("vm"),
		Tag:        []byte("app"),
		MsgID:      nil,
		Message:    []byte("hi\xff"),
		Fields: []Field{
			{Key: []byte("zoo@123.tiger"), Value: []byte("hungry")},
			{Key: []byte("k"), Value: nil},
		},
	}
}

// sampleHex is sampleEntry's encoding, written out by hand from the layout
// in doc.go: it pins the format so an accidental change fails loudly.
const sampleHex = "" +
	"01" + "02" + "1100" + "0d" + // version, format, flags, priority
	"04030201" + "e8030000" + "64000000" + "92100000" + // pid, uid, gid, claimed pid
	"feffffffffffffff" + // source time -2
	"02" + "766d" + // hostname "vm"
	"03" + "617070" + // tag "app"
	"00" + // msgid
	"03" + "6869ff" + // message "hi\xff"
	"02" + // two fields
	"0d" + "7a6f6f403132332e7469676572" + "06" + "68756e677279" + // "zoo@123.tiger"="hungry"
	"01" + "6b" + "00" // "k"=""

func TestAppendEncodeLayout(t *testing.T) {
	e := sampleEntry()
	got := AppendEncode([]byte("prefix"), e)
	want, _ := hex.DecodeString(hex.EncodeToString([]byte("prefix")) + sampleHex)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendEncode:\n got %x\nwant %x", got, want)
	}
	if n := EncodedLen(e); n != len(want)-len("prefix") {
		t.Errorf("EncodedLen = %d, want %d", n, len(want)-len("prefix"))
	}
	if n := EncodedLen(&Entry{}); n != 34 {
		t.Errorf("EncodedLen(empty) = %d, want 34 (documented in doc.go)", n)
	}
}

func TestDecode(t *testing.T) {
	b, _ := hex.DecodeString(sampleHex)
	var got Entry
	if err := Decode(b, &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := sampleEntry()
	if !got.Equal(want) {
		t.Fatalf("Decode:\n got %+v\nwant %+v", got, *want)
	}
	if got.MsgID != nil || got.Fields[1].Value != nil {
		t.Errorf("empty slices should decode as nil: msgid %q, value %q", got.MsgID, got.Fields[1].Value)
	}
	// Slices alias the input and are capped so appending cannot clobber it.
	if &got.Hostname[0] != &b[30] {
		t.Errorf("Hostname does not alias the input")
	}
	if cap(got.Hostname) != len(got.Hostname) {
		t.Errorf("cap(Hostname) = %d, want %d", cap(got.Hostname), len(got.Hostname))
	}
}

// originHex is the version 2 encoding of sampleEntry with origin fields
// comm "demo", exe "/bin/d", unit "d.service", slice "system.slice",
// cgroup "/system.slice/d.service": sampleHex with version 2 and the six
// origin fields appended, written out by hand from doc.go.
var originHex = "02" + sampleHex[2:] +
	"04" + "64656d6f" + // comm "demo"
	"06" + "2f62696e2f64" + // exe "/bin/d"
	"09" + "642e73657276696365" + // unit "d.service"
	"00" + // user unit
	"0c" + "73797374656d2e736c696365" + // slice "system.slice"
	"17" + "2f73797374656d2e736c6963652f642e73657276696365" // cgroup

func originEntry() *Entry {
	e := sampleEntry()
	e.Origin = Origin{Comm: []byte("demo"), Exe: []byte("/bin/d"), Unit: []byte("d.service"),
		Slice: []byte("system.slice"), Cgroup: []byte("/system.slice/d.service")}
	return e
}

// An entry with origin fields is written as version 2; one without keeps
// version 1, byte for byte what it was before origin fields existed, so
// that older readers still read it. Both decode.
func TestEncodeOriginVersion(t *testing.T) {
	e := originEntry()
	got := AppendEncode(nil, e)
	want, _ := hex.DecodeString(originHex)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendEncode with origin:\n got %x\nwant %x", got, want)
	}
	if n := EncodedLen(e); n != len(want) {
		t.Errorf("EncodedLen = %d, want %d", n, len(want))
	}
	var d Entry
	if err := Decode(got, &d); err != nil || !d.Equal(e) {
		t.Fatalf("Decode(version 2) = %v, equal %v:\n%+v", err, d.Equal(e), d.Origin)
	}
	// Decoding a version 1 record into an entry that held origin fields
	// clears them.
	v1, _ := hex.DecodeString(sampleHex)
	if err := Decode(v1, &d); err != nil || !d.Origin.IsZero() {
		t.Errorf("Decode(version 1) = %v, origin %+v; want nil, empty", err, d.Origin)
	}
	if uid, ok := PeekUID(got); !ok || uid != e.UID {
		t.Errorf("PeekUID(version 2) = %d, %v; want %d, true", uid, ok, e.UID)
	}
	// Only Origin makes version 2: a sender's own "comm" field does not.
	f := sampleEntry()
	f.Fields = append(f.Fields, Field{Key: []byte("comm"), Value: []byte("forged")})
	if b := AppendEncode(nil, f); b[0] != VersionNoOrigin {
		t.Errorf("entry with a comm field but no origin: version %d, want %d", b[0], VersionNoOrigin)
	}
}

func TestDecodeReusesFields(t *testing.T) {
	b := AppendEncode(nil, sampleEntry())
	e := Entry{Fields: make([]Field, 5, 8)}
	backing := &e.Fields[:1][0]
	if err := Decode(b, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Fields) != 2 || &e.Fields[0] != backing {
		t.Errorf("Fields: len %d, reused backing array %v; want 2, true", len(e.Fields), &e.Fields[0] == backing)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good, _ := hex.DecodeString(sampleHex)
	header := good[:headerSize]
	// h builds header + hex tail.
	h := func(tail string) []byte {
		b, err := hex.DecodeString(tail)
		if err != nil {
			t.Fatal(err)
		}
		return append(bytes.Clone(header), b...)
	}
	tests := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		{"empty", nil, "empty"},
		{"version 0", append([]byte{0}, good[1:]...), "unknown version 0"},
		{"version 3", append([]byte{3}, good[1:]...), "unknown version 3"},
		{"version 2 without origin", append([]byte{2}, good[1:]...), "origin field: truncated"},
		{"version 2, origin all empty", append(append([]byte{2}, good[1:]...), 0, 0, 0, 0, 0, 0), "without origin fields (non-canonical)"},
		{"short header", good[:headerSize-1], "header"},
		{"header only", header, "hostname: truncated"},
		{"hostname lies", h("05766d"), "hostname: length 5 exceeds the 2 remaining"},
		{"huge length", h("ffffffffffffffffff01"), "hostname: length 18446744073709551615"},
		{"varint overflow", h("ffffffffffffffffffff01"), "overflows"},
		{"non-minimal varint", h("8000"), "non-minimal"},
		{"message missing", h("000000"), "message: truncated"},
		{"field count lies", h("0000000003" + "0000" + "00"), "field count 3 exceeds the 3 remaining bytes"},
		{"field value missing", h("0000000001" + "0161"), "field value: truncated"},
		{"trailing byte", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"truncated by one", good[:len(good)-1], "field value: truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Entry
			err := Decode(tt.in, &e)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%x) = %v, want ErrCorrupt", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode(%x) = %q, want it to mention %q", tt.in, err, tt.want)
			}
		})
	}
}

// randomEntry returns an entry whose slices have lengths around the
// varint boundaries (0, 1, 127, 128, 16383, 16384).
func randomEntry(r *rand.Rand) *Entry {
	lens := []int{0, 1, 2, 127, 128, 300, 16383, 16384}
	bs := func() []byte {
		n := lens[r.IntN(len(lens))]
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	e := &Entry{
		Format:     Format(r.Uint32()),
		Flags:      Flags(r.Uint32()),
		Priority:   uint8(r.Uint32()),
		PID:        r.Uint32(),
		UID:        r.Uint32(),
		GID:        r.Uint32(),
		ClaimedPID: r.Uint32(),
		SourceTime: int64(r.Uint64()),
		Hostname:   bs(),
		Tag:        bs(),
		MsgID:      bs(),
		Message:    bs(),
	}
	for range r.IntN(4) * r.IntN(50) {
		e.Fields = append(e.Fields, Field{Key: bs(), Value: bs()})
	}
	if r.IntN(2) == 0 {
		for _, f := range e.Origin.fields() {
			*f = bs()
		}
	}
	return e
}

func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var got Entry
	for i := range 200 {
		want := randomEntry(r)
		b := AppendEncode(nil, want)
		if len(b) != EncodedLen(want) {
			t.Fatalf("case %d: len %d, EncodedLen %d", i, len(b), EncodedLen(want))
		}
		if err := Decode(b, &got); err != nil {
			t.Fatalf("case %d: Decode: %v", i, err)
		}
		if !got.Equal(want) {
			t.Fatalf("case %d: round trip changed the entry", i)
		}
		// Every strict prefix must be rejected, never accepted or panicking.
		for _, n := range []int{0, 1, headerSize, len(b) / 2, len(b) - 1} {
			if n < len(b) {
				if err := Decode(b[:n], &got); err == nil {
					t.Fatalf("case %d: Decode accepted a %d-byte prefix of %d bytes", i, n, len(b))
				}
			}
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	e := originEntry()
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], e) }); n != 0 {
		t.Errorf("AppendEncode: %v allocs/op, want 0", n)
	}
	var d Entry
	d.Fields = make([]Field, 0, 4)
	if n := testing.AllocsPerRun(100, func() {
		if err := Decode(buf, &d); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Decode: %v allocs/op, want 0", n)
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{FormatRaw: "raw", FormatRFC3164: "rfc3164", FormatRFC5424: "rfc5424",
		FormatPython: "python", FormatJournal: "journal", FormatJSON: "json", 42: "format(42)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
}

func TestReset(t *testing.T) {
	e := sampleEntry()
	fields := e.Fields
	e.Reset()
	if !e.Equal(&Entry{}) || cap(e.Fields) != cap(fields) || len(e.Fields) != 0 {
		t.Errorf("Reset left %+v (cap %d)", *e, cap(e.Fields))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendEncode(nil, sampleEntry()))
	f.Add(AppendEncode(nil, &Entry{}))
	f.Add(AppendEncode(nil, originEntry()))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := Decode(b, &e); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// The encoding is canonical: what decodes re-encodes to the same bytes.
		again := AppendEncode(nil, &e)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		var e2 Entry
		if err := Decode(again, &e2); err != nil || !e2.Equal(&e) {
			t.Fatalf("second round trip: %v, equal %v", err, e2.Equal(&e))
		}
	})
}

func TestPeekUID(t *testing.T) {
	withCreds := AppendEncode(nil, sampleEntry())
	noCreds := sampleEntry()
	noCreds.Flags &^= FlagCreds
	root := AppendEncode(nil, &Entry{Flags: FlagCreds})
	for _, tc := range []struct {
		name   string
		b      []byte
		uid    uint32
		wantOK bool
	}{
		{"credentials", withCreds, 1000, true},
		{"uid 0", root, 0, true},
		{"header only", withCreds[:headerSize], 1000, true},
		{"no credentials", AppendEncode(nil, noCreds), 0, false},
		{"short header", withCreds[:headerSize-1], 0, false},
		{"other version", append([]byte{Version + 1}, withCreds[1:]...), 0, false},
		{"empty", nil, 0, false},
	} {
		if uid, ok := PeekUID(tc.b); uid != tc.uid || ok != tc.wantOK {
			t.Errorf("%s: PeekUID = %d, %v; want %d, %v", tc.name, uid, ok, tc.uid, tc.wantOK)
		}
	}
	if n := testing.AllocsPerRun(100, func() { PeekUID(withCreds) }); n != 0 {
		t.Errorf("PeekUID allocates %v times", n)
	}
}

// FuzzPeekUID: PeekUID never panics, and whenever Decode accepts an
// encoding, PeekUID reports exactly its credentials' uid.
func FuzzPeekUID(f *testing.F) {
	e := sampleEntry()
	f.Add(AppendEncode(nil, e))
	e.Flags &^= FlagCreds
	f.Add(AppendEncode(nil, e))
	f.Add(AppendEncode(nil, &Entry{Flags: FlagCreds, UID: 65534})[:headerSize])
	f.Add(AppendEncode(nil, originEntry()))
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		uid, ok := PeekUID(b)
		if !ok && uid != 0 {
			t.Fatalf("PeekUID = %d, false: want 0 with false", uid)
		}
		var e Entry
		if Decode(b, &e) != nil {
			return
		}
		if creds := e.Flags&FlagCreds != 0; ok != creds || (creds && uid != e.UID) {
			t.Fatalf("PeekUID = %d, %v; Decode gives uid %d, credentials %v", uid, ok, e.UID, creds)
		}
	})
}

func BenchmarkAppendEncode(b *testing.B) {
	e := sampleEntry()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEncode(buf[:0], e)
	}
}

func BenchmarkDecode(b *testing.B) {
	buf := AppendEncode(nil, sampleEntry())
	var e Entry
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(buf, &e); err != nil {
			b.Fatal(err)
		}
	}
}
