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
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// ConnectPath is where edge agents open their websocket.
const ConnectPath = "/v1/connect"

// Reasons the hub gives when it refuses or closes a session; they end up in the EdgeNode's
// Connected condition.
const (
	ReasonProtocolVersionRefused = "ProtocolVersionRefused"
	ReasonCertificateRefused     = "CertificateRefused"
	ReasonReplaced               = "Replaced"
	ReasonNodeDeleted            = "NodeDeleted"
	ReasonQueueOverflow          = "QueueOverflow"
)

// Config holds what the hub needs. Projections, Status and Reports are the hub's only ties to
// the rest of cloudcore.
type Config struct {
	// Projections supply what each node holds, one per object kind.
	Projections []Projection
	// Identify reads the node name and EdgeNode UID from a verified client certificate.
	Identify func(*x509.Certificate) (name, uid string, err error)
	// Authorizer checks that the identified node may connect now.
	Authorizer Authorizer
	// Status learns of sessions opening and closing.
	Status StatusSink
	// Reports applies the edge's reports.
	Reports ReportSink
	// PingInterval is how often the hub pings each node; PongWait is how long it waits for any
	// message or pong before it declares the node gone. Defaults: 20s and 60s.
	PingInterval, PongWait time.Duration
	// WriteWait bounds one write; default 10s.
	WriteWait time.Duration
	// QueueLimit bounds the messages waiting for one node; past it the session is closed and
	// the node resyncs on reconnect, rather than the hub buffering without bound. Default 10000.
	QueueLimit int
	// Registerer receives the hub's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Log is the hub's logger.
	Log logr.Logger
}

// Hub is CloudHub. Its zero value is not usable; call New.
type Hub struct {
	cfg      Config
	kinds    map[wire.Kind]Projection
	metrics  *metrics
	upgrader websocket.Upgrader
	ids      atomic.Uint64

	mu       sync.Mutex
	sessions map[string]*session
	applied  map[string]uint64 // highest report sequence applied, per node (for Welcome)
}

// New makes a hub.
func New(cfg Config) (*Hub, error) {
	if cfg.Identify == nil || cfg.Authorizer == nil || cfg.Status == nil || cfg.Reports == nil {
		return nil, errors.New("hub: Identify, Authorizer, Status and Reports are required")
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 20 * time.Second
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = 60 * time.Second
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = 10 * time.Second
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 10000
	}
	h := &Hub{
		cfg:      cfg,
		kinds:    map[wire.Kind]Projection{},
		metrics:  newMetrics(cfg.Registerer),
		sessions: map[string]*session{},
		applied:  map[string]uint64{},
		upgrader: websocket.Upgrader{
			// Most of 10,000 sessions are idle most of the time: the write buffer comes from a
			// pool and goes back after each message, and the read buffer is small (frames of
			// any size are read through it). Per-connection 16 KiB buffers cost 32 KiB × nodes.
			ReadBufferSize: 4 << 10, WriteBufferSize: 16 << 10, WriteBufferPool: &sync.Pool{},
			// Edge agents are not browsers; there is no origin to check.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	for _, p := range cfg.Projections {
		if _, dup := h.kinds[p.Kind()]; dup {
			return nil, fmt.Errorf("hub: two projections for kind %s", p.Kind())
		}
		h.kinds[p.Kind()] = p
	}
	return h, nil
}

func (h *Hub) nextID() string { return fmt.Sprintf("c%d", h.ids.Add(1)) }

// ServeHTTP accepts an edge agent's websocket on ConnectPath. The node is the one named by the
// verified client certificate; nothing the client sends can change that.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		h.metrics.refusals.WithLabelValues("NoClientCertificate").Inc()
		http.Error(w, "a client certificate signed by the edgetwin CA is required", http.StatusUnauthorized)
		return
	}
	name, uid, err := h.cfg.Identify(r.TLS.PeerCertificates[0])
	if err != nil {
		h.metrics.refusals.WithLabelValues(ReasonCertificateRefused).Inc()
		http.Error(w, "the client certificate does not name an edge node: "+err.Error(), http.StatusForbidden)
		return
	}
	if err := h.cfg.Authorizer.Authorize(r.Context(), name, uid); err != nil {
		h.metrics.refusals.WithLabelValues(ReasonCertificateRefused).Inc()
		h.cfg.Status.Refused(name, ReasonCertificateRefused, err.Error())
		http.Error(w, "node "+name+" may not connect: "+err.Error(), http.StatusForbidden)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	conn.SetReadLimit(wire.MaxFrameSize)
	s := newSession(h, name, conn)
	s.run(context.WithoutCancel(r.Context()))
}

// register makes s the node's session, stopping the one it replaces. The old session's cleanup
// sees that it is no longer registered and leaves the node's status alone.
func (h *Hub) register(s *session) {
	h.mu.Lock()
	old := h.sessions[s.node]
	h.sessions[s.node] = s
	h.metrics.connected.Set(float64(len(h.sessions)))
	h.mu.Unlock()
	if old != nil {
		old.stop(ReasonReplaced, "a newer session from the same node replaced this one")
	}
}

// unregister removes s if it is still the node's session and reports whether it was.
func (h *Hub) unregister(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.node] != s {
		return false
	}
	delete(h.sessions, s.node)
	h.metrics.connected.Set(float64(len(h.sessions)))
	h.metrics.queueDepth.DeleteLabelValues(s.node)
	return true
}

func (h *Hub) session(node string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[node]
}

func (h *Hub) appliedSeq(node string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.applied[node]
}

// Changed tells the hub that the object ref of its kind may have changed for node: it asks the
// kind's projection what the node should hold now and queues an upsert or a delete if that
// differs from what the node holds. Projections call it from their event handlers; it does not
// block on the network.
func (h *Hub) Changed(ctx context.Context, node string, ref wire.ObjectRef) {
	if s := h.session(node); s != nil {
		s.reconcile(ctx, ref)
	}
}

// Applied records that the reports of node up to seq have been applied, and acknowledges them
// to the node's session if it has one (a later session learns it from its Welcome). A ReportSink
// whose writes complete after Apply returned calls it.
func (h *Hub) Applied(node string, seq uint64) {
	h.mu.Lock()
	advanced := seq > h.applied[node]
	if advanced {
		h.applied[node] = seq
	}
	s := h.sessions[node]
	h.mu.Unlock()
	if advanced && s != nil {
		s.ack(seq)
	}
}

// Holds reports whether node holds a session, and whether the edge holds the object ref (or
// will once what is queued for it arrives). Without a session, held is false: nothing can be
// known, and the resync on the next connect removes what should not be there.
func (h *Hub) Holds(node string, ref wire.ObjectRef) (connected, held bool) {
	s := h.session(node)
	if s == nil {
		return false, false
	}
	return true, s.holds(ref.Key())
}

// Disconnect closes a node's session, for example because its EdgeNode was deleted.
func (h *Hub) Disconnect(node, reason, message string) {
	if s := h.session(node); s != nil {
		s.stop(reason, message)
	}
}

// Close ends every session, for shutdown. Sessions accepted after Close are not prevented; the
// caller stops the listener first.
func (h *Hub) Close() {
	h.mu.Lock()
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.stop("ShuttingDown", "cloudcore is shutting down")
	}
}

// ConnectedNodes returns the names of the nodes holding a session, in no particular order.
func (h *Hub) ConnectedNodes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes := make([]string, 0, len(h.sessions))
	for n := range h.sessions {
		nodes = append(nodes, n)
	}
	return nodes
}

// Synced reports whether node holds a session whose resync has been sent and acknowledged.
func (h *Hub) Synced(node string) bool {
	s := h.session(node)
	return s != nil && s.synced()
}
