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
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/cloud/hub/hubtest"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/cloud/pki/pkitest"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// events records what the hub tells its StatusSink and ReportSink.
type events struct {
	mu      sync.Mutex
	log     []string
	reports []wire.Report
}

func (e *events) add(s string) { e.mu.Lock(); e.log = append(e.log, s); e.mu.Unlock() }
func (e *events) Connected(node string, a wire.AgentInfo, _ int) {
	e.add("connected " + node + " " + a.Version)
}
func (e *events) Disconnected(node, _ string)    { e.add("disconnected " + node) }
func (e *events) Refused(node, reason, _ string) { e.add("refused " + node + " " + reason) }
func (e *events) snapshot() []string             { e.mu.Lock(); defer e.mu.Unlock(); return slices.Clone(e.log) }
func (e *events) count(s string) int {
	n := 0
	for _, l := range e.snapshot() {
		if l == s {
			n++
		}
	}
	return n
}

func (e *events) Apply(_ context.Context, _ string, reports []wire.Report) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reports = append(e.reports, reports...)
	var highest uint64
	for _, r := range reports {
		highest = max(highest, r.Seq)
	}
	return highest, nil
}

// store is the test's Projection: node → objects of kind Device.
type store struct {
	mu   sync.Mutex
	objs map[string]map[string]Object
}

func (s *store) Kind() wire.Kind { return wire.KindDevice }

func (s *store) List(_ context.Context, node string) ([]Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Object, 0, len(s.objs[node]))
	for _, o := range s.objs[node] {
		out = append(out, o)
	}
	return out, nil
}

func (s *store) Get(_ context.Context, node string, ref wire.ObjectRef) (Object, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[node][ref.Key()]
	return o, ok, nil
}

// set puts an object with the given spec for node; the version is the hash of the body.
func (s *store) set(t *testing.T, node, name string, spec any) Object {
	t.Helper()
	o, err := NewObject(wire.KindDevice, "default", name, map[string]any{"spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objs[node] == nil {
		s.objs[node] = map[string]Object{}
	}
	s.objs[node][o.Ref.Key()] = o
	return o
}

func (s *store) remove(node, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs[node], wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: name}.Key())
}

// rig is a running hub behind a real TLS server on loopback.
type rig struct {
	t      *testing.T
	ca     *pki.CA
	hub    *Hub
	srv    *httptest.Server
	nodes  *hubtest.Nodes
	events *events
	store  *store
}

func newRig(t *testing.T, tweak func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, ca: pkitest.NewCA(t), nodes: hubtest.NewNodes(), events: &events{},
		store: &store{objs: map[string]map[string]Object{}}}
	cfg := Config{Projections: []Projection{r.store}, Identify: pki.NodeIdentity, Authorizer: r.nodes, Status: r.events,
		Reports: r.events, PingInterval: time.Second, PongWait: 5 * time.Second, Log: testr.New(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.hub = h
	mux := http.NewServeMux()
	mux.Handle(ConnectPath, h)
	r.srv = httptest.NewUnstartedServer(mux)
	r.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pkitest.ServerCertificate(t, r.ca)},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: r.ca.Pool(), MinVersion: tls.VersionTLS12}
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

// edge is a protocol peer playing an edge agent over a real websocket.
type edge struct {
	t    *testing.T
	conn *websocket.Conn
	resp *http.Response
}

func (r *rig) dial(cert *tls.Certificate) (*edge, error) {
	tlsCfg := &tls.Config{RootCAs: r.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		tlsCfg.Certificates = []tls.Certificate{*cert}
	}
	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: 5 * time.Second}
	u := "wss" + strings.TrimPrefix(r.srv.URL, "https") + ConnectPath
	conn, resp, err := d.Dial(u, nil)
	if err != nil {
		return &edge{t: r.t, resp: resp}, err
	}
	r.t.Cleanup(func() { _ = conn.Close() })
	return &edge{t: r.t, conn: conn, resp: resp}, nil
}

// connect joins node with a valid certificate and sends a hello holding the given objects.
func (r *rig) connect(node string, held ...wire.ObjectRef) *edge {
	r.t.Helper()
	return r.connectSpeaking(wire.ProtocolVersion, node, held...)
}

// connectSpeaking is connect for an edge that speaks protocol version v.
func (r *rig) connectSpeaking(v int, node string, held ...wire.ObjectRef) *edge {
	r.t.Helper()
	r.nodes.Set(node, "uid-"+node)
	cert := pkitest.NodeCertificate(r.t, r.ca, node, "uid-"+node, time.Hour)
	e, err := r.dial(&cert)
	if err != nil {
		r.t.Fatalf("dialing as %s: %v", node, err)
	}
	e.send(&wire.Message{ID: "h", Type: wire.TypeHello, Hello: &wire.Hello{ProtocolVersion: v,
		Agent: wire.AgentInfo{Version: "v-test", OS: "linux", Arch: "amd64"}, Objects: held}})
	return e
}

func (e *edge) send(m *wire.Message) {
	e.t.Helper()
	data, err := wire.Encode(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		e.t.Fatalf("sending %s: %v", m.Type, err)
	}
}

// recv reads the next message, failing the test after 5 seconds.
func (e *edge) recv() *wire.Message {
	e.t.Helper()
	m, err := e.tryRecv(5 * time.Second)
	if err != nil {
		e.t.Fatalf("receiving: %v", err)
	}
	return m
}

func (e *edge) tryRecv(timeout time.Duration) (*wire.Message, error) {
	_ = e.conn.SetReadDeadline(time.Now().Add(timeout))
	_, data, err := e.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return wire.Decode(data)
}

// describe renders a message as "type name@version" for compact assertions.
func describe(m *wire.Message) string {
	switch {
	case m.Object != nil && m.Object.Version != "":
		return fmt.Sprintf("%s %s@%s", m.Type, m.Object.Name, m.Object.Version)
	case m.Object != nil:
		return fmt.Sprintf("%s %s", m.Type, m.Object.Name)
	case m.Type == wire.TypeAck:
		return fmt.Sprintf("ack seq %d", m.Seq)
	}
	return string(m.Type)
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
