package recordtest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/record"
)

// Fields builds a Field list from alternating keys and values; a last key
// without a value is ignored.
func Fields(kv ...string) []record.Field {
	var fs []record.Field
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, record.Field{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return fs
}

// Diff names each field in which got differs from want, one line each
// ("Tag = "a", want "b""); nil when they are equal. Nil and empty slices
// are equal.
func Diff(got, want *record.Entry) []string {
	var diffs []string
	cmp := func(name string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmpB := func(name string, g, w []byte) {
		if !bytes.Equal(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	cmp("Format", got.Format, want.Format)
	cmp("Flags", FlagNames(got.Flags), FlagNames(want.Flags))
	cmp("Priority", got.Priority, want.Priority)
	cmp("ClaimedPID", got.ClaimedPID, want.ClaimedPID)
	if got.SourceTime != want.SourceTime {
		diffs = append(diffs, fmt.Sprintf("SourceTime = %s, want %s",
			time.Unix(0, got.SourceTime).UTC().Format(time.RFC3339Nano), time.Unix(0, want.SourceTime).UTC().Format(time.RFC3339Nano)))
	}
	cmp("PID/UID/GID", [3]uint32{got.PID, got.UID, got.GID}, [3]uint32{want.PID, want.UID, want.GID})
	cmpB("Hostname", got.Hostname, want.Hostname)
	cmpB("Tag", got.Tag, want.Tag)
	cmpB("MsgID", got.MsgID, want.MsgID)
	cmpB("Message", got.Message, want.Message)
	if FieldsString(got.Fields) != FieldsString(want.Fields) {
		diffs = append(diffs, fmt.Sprintf("Fields = %s\n\twant %s", FieldsString(got.Fields), FieldsString(want.Fields)))
	}
	return diffs
}

// Check reports every difference between got and want as one test error
// that names the input the entry came from.
func Check(t testing.TB, in []byte, got, want *record.Entry) {
	t.Helper()
	if diffs := Diff(got, want); len(diffs) > 0 {
		t.Errorf("Parse(%q):\n\t%s", in, strings.Join(diffs, "\n\t"))
	}
}

// FieldsString renders fields as [key=value ...] with both sides quoted.
func FieldsString(fs []record.Field) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q=%q", f.Key, f.Value)
	}
	b.WriteByte(']')
	return b.String()
}

// FlagNames renders flags as {Creds,Truncated,...}, unknown bits in hex.
func FlagNames(f record.Flags) string {
	var names []string
	for _, n := range []struct {
		f    record.Flags
		name string
	}{
		{record.FlagCreds, "Creds"}, {record.FlagTruncated, "Truncated"}, {record.FlagMalformed, "Malformed"},
		{record.FlagDefaultPriority, "DefaultPriority"}, {record.FlagInvalidUTF8, "InvalidUTF8"},
	} {
		if f&n.f != 0 {
			names = append(names, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", uint16(f)))
	}
	return "{" + strings.Join(names, ",") + "}"
}
