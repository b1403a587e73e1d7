package record_test

import (
	"fmt"

	"github.com/collectord/collectord/pkg/record"
)

func Example() {
	in := record.Entry{
		Format:   record.FormatRFC3164,
		Priority: 14,
		Tag:      []byte("app"),
		Message:  []byte("hi"),
	}
	buf := record.AppendEncode(make([]byte, 0, 64), &in)

	var out record.Entry // reuse it across records to avoid allocations
	if err := record.Decode(buf, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes: %s %s: %s (severity %d)\n", len(buf), out.Format, out.Tag, out.Message, out.Severity())
	// Output: 39 bytes: rfc3164 app: hi (severity 6)
}
