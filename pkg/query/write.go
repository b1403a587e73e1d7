//go:build linux

package query

import (
	"bufio"
	"fmt"
	"time"
)

// A connection writes a response through two buffers: the batch, the B
// frame being built (about batchTarget bytes, more only for one larger
// record), and bw, which holds frames until a flush sends them. Writes
// that reach the socket run under the write deadline; the first failure
// (werr) breaks the connection, and every write after it fails at once.
// All of this belongs to serve's goroutine.
//
// record, lost, flush and ping are the connection's Handler (newConn binds
// them): Run calls them while it answers a query.

// record adds a record to the batch, sending the batch first if the record
// would take it past batchTarget.
func (c *conn) record(r Record) error {
	if len(r.Payload) > maxBatchPayload {
		// Cannot be framed: say so rather than skip it silently. (It
		// matched, so it is the client's to count, whatever its access.)
		c.s.stats.lost.Add(1)
		return c.lost(1, r.Seq+1)
	}
	if c.batch.n > 0 && c.batch.size()+batchRecordHeader+len(r.Payload) > batchTarget {
		if err := c.sendBatch(); err != nil {
			return err
		}
	}
	c.batch.add(r)
	return c.werr
}

// lost sends the batch, then an L frame.
func (c *conn) lost(lost, next uint64) error {
	c.sendBatch()
	c.recordsLost += lost
	body := lostBody(lost, next)
	return c.writeFrame(FrameLost, body[:])
}

// flush sends the batch and everything buffered.
func (c *conn) flush() error {
	c.sendBatch()
	return c.flushWriter()
}

// ping sends the batch and a P frame.
func (c *conn) ping() error {
	c.sendBatch()
	c.writeFrame(FramePing, nil)
	return c.flushWriter()
}

// sendBatch writes the batch, if it holds records, to the buffered writer.
func (c *conn) sendBatch() error {
	if c.batch.n == 0 {
		return c.werr
	}
	n := c.batch.n
	err := c.write(c.batch.frame())
	c.s.stats.sent.Add(uint64(n))
	c.recordsSent += uint64(n)
	if cap(c.batch.buf) > 4*batchTarget {
		c.batch.buf = nil // a huge record grew it: give the memory back
	}
	c.batch.reset()
	return err
}

// writeFrame writes a frame to the buffered writer.
func (c *conn) writeFrame(t FrameType, body []byte) error {
	hdr := frameHeader(t, len(body))
	if err := c.write(hdr[:]); err != nil {
		return err
	}
	return c.write(body)
}

// writeBufferSize is a connection's write buffer: a batch of records.
const writeBufferSize = 16 << 10

// sendError writes an X frame; it returns false if the connection broke.
func (c *conn) sendError(e *Error) bool {
	c.writeFrame(FrameError, marshalJSON(e))
	return c.flushWriter() == nil
}

// write writes to the buffered writer under the write deadline, and
// remembers the first failure: after it every write fails.
func (c *conn) write(p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if c.bw == nil {
		// Allocated at the first write, not at accept: a connection that
		// never says hello costs no write buffer.
		c.bw = bufio.NewWriterSize(c.nc, writeBufferSize)
	}
	if len(p) > c.bw.Available() {
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	}
	if _, err := c.bw.Write(p); err != nil {
		c.werr = fmt.Errorf("write to client: %w", err)
	}
	return c.werr
}

// flushWriter sends what the buffered writer holds, under the write
// deadline.
func (c *conn) flushWriter() error {
	if c.werr != nil {
		return c.werr
	}
	if c.bw == nil || c.bw.Buffered() == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if err := c.bw.Flush(); err != nil {
		c.werr = fmt.Errorf("write to client: %w", err)
	}
	return c.werr
}
