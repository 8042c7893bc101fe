/*
Copyright 2026 The edgetwin Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// ackQueueSize bounds the acks waiting for the writer. When it is full the reader waits, which
// stops reading from the cloud: backpressure rather than an unbounded buffer.
const ackQueueSize = 256

// session is one connection to the cloud. The reader runs in the goroutine that called connect;
// one writer goroutine owns every data write (gorilla allows one concurrent writer; control
// frames may be written from anywhere).
type session struct {
	hub  *Hub
	conn *websocket.Conn
	log  logr.Logger

	acks       chan *wire.Message
	done       chan struct{}
	writerDone chan struct{}
	once       sync.Once
	cause      error
}

// connect runs one session: dial, Hello, Welcome, then messages until the connection breaks or
// ctx ends. welcomed says whether the cloud accepted the Hello.
func (h *Hub) connect(ctx context.Context) (welcomed bool, err error) {
	h.stats.dials.Add(1)
	dialCtx, cancel := context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
	conn, resp, err := h.dialer.DialContext(dialCtx, h.url.String(), nil)
	cancel()
	if err != nil {
		if resp != nil {
			return false, fmt.Errorf("dialing the cloud: %w (HTTP status %s)", err, resp.Status)
		}
		return false, fmt.Errorf("dialing the cloud: %w", err)
	}
	s := &session{
		hub:        h,
		conn:       conn,
		log:        h.cfg.Logger.WithValues("url", h.url.String()),
		acks:       make(chan *wire.Message, ackQueueSize),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	// Closing the connection is what unblocks a read, so it is how a cancelled ctx ends the
	// session.
	stopOnCancel := context.AfterFunc(ctx, func() { s.stop(ctx.Err()) })
	defer stopOnCancel()
	conn.SetReadLimit(wire.MaxFrameSize)
	conn.SetPingHandler(s.onPing)
	conn.SetPongHandler(func(string) error { s.refreshReadDeadline(); return nil })

	if err := s.handshake(); err != nil {
		s.stop(err)
		return false, s.cause
	}
	h.stats.connected.Store(true)
	defer h.stats.synced.Store(false)
	defer h.stats.connected.Store(false)

	go s.write()
	s.stop(s.read())
	<-s.writerDone
	return true, s.cause
}

// stop ends the session once, with the first cause: it tells the cloud why in a close frame,
// closes the connection (which ends the reader) and tells the writer to return.
func (s *session) stop(cause error) {
	s.once.Do(func() {
		s.cause = cause
		close(s.done)
		code, text := websocket.CloseInternalServerErr, "edge error"
		switch {
		case errors.Is(cause, context.Canceled), errors.Is(cause, context.DeadlineExceeded):
			code, text = websocket.CloseGoingAway, "edge shutting down"
		case errors.Is(cause, ErrProtocol):
			code, text = websocket.CloseProtocolError, "edge could not accept a message"
		}
		// Best effort: the connection may be broken already.
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
			time.Now().Add(time.Second))
		_ = s.conn.Close()
	})
}

// handshake sends the Hello and waits for the Welcome.
func (s *session) handshake() error {
	store := s.hub.cfg.Store
	objects, err := store.Objects()
	if err != nil {
		return fmt.Errorf("listing held objects for the hello: %w", err)
	}
	hello := &wire.Message{ID: s.hub.nextID(), Type: wire.TypeHello, Hello: &wire.Hello{
		ProtocolVersion: wire.ProtocolVersion,
		Agent:           s.hub.cfg.Agent,
		Objects:         objects,
	}}
	// The writer does not run yet, so this goroutine may write.
	if err := s.send(hello); err != nil {
		return err
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(s.hub.cfg.HandshakeTimeout)); err != nil {
		return fmt.Errorf("setting the read deadline: %w", err)
	}
	m, err := s.receive()
	if err != nil {
		return fmt.Errorf("waiting for the answer to the hello: %w", err)
	}
	switch m.Type {
	case wire.TypeWelcome:
	case wire.TypeRefused:
		return &RefusedError{Reason: m.Refused.Reason, Message: m.Refused.Message}
	default:
		return fmt.Errorf("%w: the cloud answered the hello with %s %s", ErrProtocol, m.Type, m.ID)
	}
	w := m.Welcome
	if w.ProtocolVersion != wire.ProtocolVersion {
		return fmt.Errorf("%w: the cloud welcomed with protocol version %d, this edge speaks %d",
			ErrProtocol, w.ProtocolVersion, wire.ProtocolVersion)
	}
	// What the cloud has applied need not be sent again, whatever was lost on the way back.
	if err := store.Ack(w.AckedSeq); err != nil {
		return fmt.Errorf("applying the welcome's acked sequence: %w", err)
	}
	s.log = s.log.WithValues("node", w.NodeName)
	s.log.Info("Connected to the cloud", "ackedSeq", w.AckedSeq, "objects", len(objects))
	return nil
}

// inQueueSize bounds the messages read from the cloud and waiting for their commit. When it is
// full the reader waits, which stops reading from the cloud.
const inQueueSize = 256

// read handles the cloud's messages until the connection breaks. A reader goroutine reads and
// decodes ahead while this goroutine commits: every message that arrived during a commit goes
// into the next one (group commit), so a burst from the cloud costs a few synchronous writes
// to disk rather than one per message, and nothing is acked before the commit holding it.
func (s *session) read() error {
	in := make(chan *wire.Message, inQueueSize)
	readErr := make(chan error, 1)
	go func() {
		defer close(in)
		for {
			s.refreshReadDeadline()
			m, err := s.receive()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case in <- m:
			case <-s.done:
				readErr <- errSessionEnded
				return
			}
		}
	}()
	for {
		m, ok := <-in
		if !ok {
			return <-readErr
		}
		batch := []*wire.Message{m}
	drain:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := s.handleBatch(batch); err != nil {
			return err
		}
	}
}

// receive reads and decodes one message.
func (s *session) receive() (*wire.Message, error) {
	_, data, err := s.conn.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("reading from the cloud: %w", err)
	}
	s.hub.stats.messagesIn.Add(1)
	s.hub.stats.bytesIn.Add(uint64(len(data)))
	m, err := wire.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: decoding a message from the cloud: %w", ErrProtocol, err)
	}
	return m, nil
}

func (s *session) refreshReadDeadline() {
	// An error here means the connection is closed; the next read reports it.
	_ = s.conn.SetReadDeadline(time.Now().Add(s.hub.cfg.ReadTimeout))
}

// onPing answers the cloud's keepalive and counts it as a sign of life.
func (s *session) onPing(data string) error {
	s.refreshReadDeadline()
	err := s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.hub.cfg.WriteTimeout))
	// Like gorilla's default handler: a pong that cannot be written now is not fatal, the next
	// ping or the read deadline decides.
	var netErr net.Error
	if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return nil
	}
	return err
}
