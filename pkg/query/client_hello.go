// The client's reading of the hello reply: by Dial, or by the first request
// behind a pipelined hello (DialOptions.Pipeline).

package query

import (
	"context"
	"fmt"
)

// readHello reads the server's reply to the hello; the caller bounds the
// read. The error is what Dial returns for it (without its prefix).
func (c *Client) readHello(ctx context.Context) error {
	c.helloPending = false
	t, body, err := c.fr.Next()
	if err != nil {
		if c.opts.TLSConfig != nil && isTLSAlert(err) {
			// In TLS 1.3 the server checks the client's certificate
			// after the client has finished its handshake: a refusal
			// arrives as an alert where the hello reply was expected.
			return c.ctxErr(ctx, fmt.Errorf("tls handshake: server refused this client: %w", err))
		}
		return c.ctxErr(ctx, fmt.Errorf("read hello reply: %w", err))
	}
	switch t {
	case FrameWelcome:
		h, err := DecodeHelloReply(body)
		if err != nil {
			return err
		}
		if h.Protocol != c.opts.protocol {
			return &Error{Code: CodeVersion, Message: fmt.Sprintf("server speaks protocol version %d, this client speaks version %d", h.Protocol, c.opts.protocol)}
		}
		c.hello = h
	case FrameError:
		xe, err := DecodeError(body)
		if err != nil {
			return err
		}
		return xe
	default:
		return protocolErrorf("expected an h frame, got %s", t)
	}
	return nil
}

// readPendingHello reads the hello reply if Dial left it to the first
// request (DialOptions.Pipeline), within Timeout; a failure breaks the
// client, and the error says so as Dial's would.
func (c *Client) readPendingHello(ctx context.Context) error {
	if !c.helloPending {
		return nil
	}
	c.setReadDeadline()
	if err := c.readHello(ctx); err != nil {
		return c.fail(fmt.Errorf("dial query server %s: %w", c.addr, err))
	}
	return nil
}
