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

// session is one node's connection: the reader runs in the accepting goroutine, one writer
// goroutine drains the send queue, and stop (once) ends both.
type session struct {
	hub     *Hub
	node    string
	version int // the protocol version the edge speaks
	conn    *websocket.Conn
	log     logr.Logger

	// projecting serializes "ask the projection, then queue": without it, two handlers (say a
	// Device and a DeviceModel event) could read versions v1 and v2 and queue them in the
	// opposite order, leaving the edge on the older one.
	projecting sync.Mutex

	mu         sync.Mutex
	queue      *sendQueue
	held       map[string]wire.ObjectRef // object key → the object and version the edge acknowledged holding
	inflight   map[string]string         // object key → version sent but not yet acknowledged ("" = delete)
	syncedSent bool

	wake     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	reason   string
	message  string
}

func newSession(h *Hub, node string, conn *websocket.Conn) *session {
	return &session{
		hub: h, node: node, conn: conn, log: h.cfg.Log.WithValues("node", node),
		queue: newSendQueue(), held: map[string]wire.ObjectRef{}, inflight: map[string]string{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// run serves the session until the connection ends.
func (s *session) run(ctx context.Context) {
	hello, err := s.readHello()
	if err != nil {
		s.log.V(1).Info("No hello", "err", err.Error())
		_ = s.conn.Close()
		return
	}
	if !wire.Accepts(hello.ProtocolVersion) {
		msg := fmt.Sprintf("the edge speaks protocol version %d; this cloudcore accepts %d and %d",
			hello.ProtocolVersion, wire.ProtocolVersion, wire.ProtocolVersion-1)
		s.refuse(ReasonProtocolVersionRefused, msg)
		return
	}
	s.version = hello.ProtocolVersion
	for _, o := range hello.Objects {
		s.held[o.Key()] = o
	}

	s.hub.register(s)
	s.hub.cfg.Status.Connected(s.node, hello.Agent, hello.ProtocolVersion)
	s.log.Info("Edge node connected", "agent", hello.Agent.Version, "held", len(hello.Objects))
	if err := s.resync(ctx); err != nil {
		s.log.Error(err, "Resync failed")
		s.stop("ResyncFailed", err.Error())
	}

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	s.readLoop(ctx)
	s.stop("ConnectionClosed", "the connection ended")
	<-writerDone
	if s.hub.unregister(s) {
		s.hub.cfg.Status.Disconnected(s.node, s.message)
		s.log.Info("Edge node disconnected", "reason", s.reason, "message", s.message)
	}
}

func (s *session) readHello() (*wire.Hello, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.hub.cfg.PongWait))
	_, data, err := s.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	s.hub.metrics.received(string(wire.TypeHello), len(data))
	m, err := wire.Decode(data)
	if err != nil {
		return nil, err
	}
	if m.Type != wire.TypeHello {
		return nil, fmt.Errorf("the first message is %s, not hello", m.Type)
	}
	return m.Hello, nil
}

// refuse tells the edge why it is refused, records it on the node, and closes.
func (s *session) refuse(reason, message string) {
	s.hub.metrics.refusals.WithLabelValues(reason).Inc()
	s.hub.cfg.Status.Refused(s.node, reason, message)
	m := &wire.Message{ID: s.hub.nextID(), Type: wire.TypeRefused, Refused: &wire.Refused{Reason: reason, Message: message}}
	if data, err := wire.Encode(m); err == nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.hub.cfg.WriteWait))
		_ = s.conn.WriteMessage(websocket.TextMessage, data)
	}
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason),
		time.Now().Add(time.Second))
	_ = s.conn.Close()
}

// resync queues the welcome, the difference between what the node should hold and what it
// said it holds, and the synced marker.
func (s *session) resync(ctx context.Context) error {
	s.projecting.Lock()
	defer s.projecting.Unlock()
	desired := map[string]Object{}
	for _, p := range s.hub.kinds {
		if wire.KindSince(p.Kind()) > s.version {
			continue // an older edge would refuse the kind
		}
		objs, err := p.List(ctx, s.node)
		if err != nil {
			return fmt.Errorf("listing %s for node %s: %w", p.Kind(), s.node, err)
		}
		for _, o := range objs {
			desired[o.Ref.Key()] = o
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue.push(&wire.Message{ID: s.hub.nextID(), Type: wire.TypeWelcome,
		Welcome: &wire.Welcome{ProtocolVersion: wire.ProtocolVersion, NodeName: s.node, AckedSeq: s.hub.appliedSeq(s.node)}})
	for key, o := range desired {
		if h, ok := s.held[key]; !ok || h.Version != o.Ref.Version {
			s.queue.pushObject(s.upsert(o))
		}
	}
	for key, h := range s.held {
		if _, ok := desired[key]; !ok {
			ref := wire.ObjectRef{Kind: h.Kind, Namespace: h.Namespace, Name: h.Name}
			s.queue.pushObject(&wire.Message{ID: s.hub.nextID(), Type: wire.TypeDelete, Object: &ref})
		}
	}
	s.queue.push(&wire.Message{ID: s.hub.nextID(), Type: wire.TypeSynced})
	s.kick()
	return nil
}

func (s *session) upsert(o Object) *wire.Message {
	ref := o.Ref
	return &wire.Message{ID: s.hub.nextID(), Type: wire.TypeUpsert, Object: &ref, Body: o.Body}
}

// expected returns what the edge will hold for key once everything queued and sent is applied.
// Callers hold s.mu.
func (s *session) expected(key string) (version string, present bool) {
	if m, ok := s.queue.pending(key); ok {
		return m.Object.Version, m.Type == wire.TypeUpsert
	}
	if v, ok := s.inflight[key]; ok {
		return v, v != ""
	}
	h, ok := s.held[key]
	return h.Version, ok
}

// reconcile queues whatever brings the edge's copy of ref to what the projection says now.
func (s *session) reconcile(ctx context.Context, ref wire.ObjectRef) {
	p, ok := s.hub.kinds[ref.Kind]
	if !ok || wire.KindSince(ref.Kind) > s.version {
		return
	}
	s.projecting.Lock()
	defer s.projecting.Unlock()
	obj, found, err := p.Get(ctx, s.node, ref)
	if err != nil {
		s.log.Error(err, "Projecting an object", "object", ref.Key())
		return
	}
	key := ref.Key()
	s.mu.Lock()
	version, present := s.expected(key)
	switch {
	case found && (!present || version != obj.Ref.Version):
		if s.queue.pushObject(s.upsert(obj)) {
			s.hub.metrics.coalesced.Inc()
		}
	case !found && present:
		del := wire.ObjectRef{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		if s.queue.pushObject(&wire.Message{ID: s.hub.nextID(), Type: wire.TypeDelete, Object: &del}) {
			s.hub.metrics.coalesced.Inc()
		}
	default:
		s.mu.Unlock()
		return
	}
	overflow := s.queue.len() > s.hub.cfg.QueueLimit
	s.hub.metrics.queueDepth.WithLabelValues(s.node).Set(float64(s.queue.len()))
	s.mu.Unlock()
	if overflow {
		// Level-based state makes this safe: the node resyncs everything when it reconnects.
		s.hub.metrics.drops.WithLabelValues(ReasonQueueOverflow).Inc()
		s.stop(ReasonQueueOverflow, fmt.Sprintf("more than %d messages waited for the node", s.hub.cfg.QueueLimit))
		return
	}
	s.kick()
}

func (s *session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends the session once, with the first reason given.
func (s *session) stop(reason, message string) {
	s.stopOnce.Do(func() {
		s.reason, s.message = reason, message
		if reason != "ConnectionClosed" {
			s.hub.metrics.drops.WithLabelValues(reason).Inc()
		}
		close(s.done)
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason),
			time.Now().Add(time.Second))
		_ = s.conn.Close()
	})
}

// next pops the next message and records objects as in flight. It returns nil when the queue
// is empty.
func (s *session) next() *wire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.queue.pop()
	if m == nil {
		return nil
	}
	switch m.Type {
	case wire.TypeUpsert:
		s.inflight[m.Object.Key()] = m.Object.Version
	case wire.TypeDelete:
		s.inflight[m.Object.Key()] = ""
	case wire.TypeSynced:
		s.syncedSent = true
	}
	s.hub.metrics.queueDepth.WithLabelValues(s.node).Set(float64(s.queue.len()))
	return m
}

func (s *session) writeLoop() {
	ping := time.NewTicker(s.hub.cfg.PingInterval)
	defer ping.Stop()
	for {
		for m := s.next(); m != nil; m = s.next() {
			if err := s.write(m); err != nil {
				s.stop("WriteFailed", err.Error())
				return
			}
		}
		select {
		case <-s.done:
			return
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.hub.cfg.WriteWait)); err != nil {
				s.stop("PingFailed", err.Error())
				return
			}
		case <-s.wake:
		}
	}
}

func (s *session) write(m *wire.Message) error {
	data, err := wire.Encode(m)
	if err != nil {
		// A message the hub built itself does not encode: a bug, or an object over the frame
		// limit. Skip it rather than kill the session; the log says which.
		s.log.Error(err, "Dropping a message that does not encode", "type", m.Type)
		return nil
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.hub.cfg.WriteWait))
	if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return err
	}
	s.hub.metrics.sent(string(m.Type), len(data))
	return nil
}

func (s *session) readLoop(ctx context.Context) {
	deadline := func() { _ = s.conn.SetReadDeadline(time.Now().Add(s.hub.cfg.PongWait)) }
	s.conn.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		deadline()
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				s.stop("KeepaliveTimeout", fmt.Sprintf("no message or pong from the node for %s", s.hub.cfg.PongWait))
			}
			return // the edge went away; run's stop records it as ConnectionClosed
		}
		m, err := wire.Decode(data)
		if err != nil {
			s.hub.metrics.received("invalid", len(data))
			s.stop("ProtocolError", err.Error())
			return
		}
		s.hub.metrics.received(string(m.Type), len(data))
		switch m.Type {
		case wire.TypeAck:
			if m.Object != nil {
				s.acked(*m.Object)
				continue
			}
			s.stop("ProtocolError", "the edge acknowledged a sequence")
			return
		case wire.TypeReport:
			s.report(ctx, m.Reports)
		default:
			s.stop("ProtocolError", fmt.Sprintf("unexpected %s from the edge", m.Type))
			return
		}
	}
}

// acked records that the edge holds (or no longer holds) an object version.
func (s *session) acked(ref wire.ObjectRef) {
	key := ref.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref.Version == "" {
		delete(s.held, key)
	} else {
		s.held[key] = ref
	}
	if v, ok := s.inflight[key]; ok && v == ref.Version {
		delete(s.inflight, key)
	}
}

func (s *session) report(ctx context.Context, reports []wire.Report) {
	seq, err := s.hub.cfg.Reports.Apply(ctx, s.node, reports)
	if err != nil {
		// Not acknowledged: the edge keeps the reports and sends them again.
		s.log.Error(err, "Applying reports", "count", len(reports))
	}
	if seq == 0 {
		return
	}
	s.hub.Applied(s.node, seq) // acknowledges only an advance, so a late answer never acks backwards
}

// ack queues the acknowledgement of every report up to seq.
func (s *session) ack(seq uint64) {
	s.mu.Lock()
	s.queue.push(&wire.Message{ID: s.hub.nextID(), Type: wire.TypeAck, Seq: seq})
	s.mu.Unlock()
	s.kick()
}

// holds reports whether the edge may hold key: it acknowledged holding it, or a message about
// it is queued or in flight. A delete counts until the edge acknowledges it; so does an upsert,
// whose acknowledgement may still be on its way when a delete follows it.
func (s *session) holds(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[key]; ok {
		return true
	}
	if _, ok := s.inflight[key]; ok {
		return true
	}
	_, ok := s.queue.pending(key)
	return ok
}

// synced reports whether the resync was sent and every object sent since has been acknowledged.
func (s *session) synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncedSent && len(s.inflight) == 0 && s.queue.objects == 0
}
