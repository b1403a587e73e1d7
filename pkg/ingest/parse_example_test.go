package ingest_test

import (
	"fmt"

	"github.com/collectord/collectord/pkg/ingest"
	"github.com/collectord/collectord/pkg/record"
)

func ExampleParser_Parse() {
	var p ingest.Parser // one per receiving goroutine
	var e record.Entry  // reused: its Fields array is kept
	var payload []byte  // reused encoding buffer
	for _, dgram := range []string{
		"<14>Nov 24 22:31:11 app[4242]: hi\n",
		`<13>1 2026-11-24T22:31:11.123456+00:00 vm app - - [zoo@123 tiger="hungry"] hi`,
		"<11>boom\nTraceback (most recent call last):\x00",
		"MESSAGE=hello\nPRIORITY=3\nSYSLOG_IDENTIFIER=app\n",
		`{"level":"warn","msg":"disk low","free_mb":12}`,
		"plain text\n",
	} {
		p.Parse([]byte(dgram), &e)
		// e aliases dgram and p's scratch: encode it before the next Parse.
		payload = record.AppendEncode(payload[:0], &e)
		fmt.Printf("%-7s pri=%-3d tag=%q msg=%q fields=%d\n", e.Format, e.Priority, e.Tag, e.Message, len(e.Fields))
	}
	// Output:
	// rfc3164 pri=14  tag="app" msg="hi" fields=0
	// rfc5424 pri=13  tag="app" msg="hi" fields=1
	// python  pri=11  tag="" msg="boom\nTraceback (most recent call last):" fields=0
	// journal pri=11  tag="app" msg="hello" fields=0
	// json    pri=12  tag="" msg="disk low" fields=1
	// raw     pri=13  tag="" msg="plain text" fields=0
}
