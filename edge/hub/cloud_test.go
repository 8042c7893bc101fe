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
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// waitTimeout bounds every wait in these tests; conditions are polled, never slept on.
const waitTimeout = 10 * time.Second

// fakeCloud plays CloudHub's side of the protocol, over real TLS websockets on loopback. Each
// connection that sends a Hello is handed to the test as a peer, which the test drives.
type fakeCloud struct {
	srv   *httptest.Server
	pki   *testPKI
	peers chan *peer
	dials atomic.Int32
}

// peer is one edge connection as the fake cloud sees it.
type peer struct {
	t      *testing.T
	conn   *websocket.Conn
	node   string // the client certificate's CN
	hello  *wire.Hello
	msgs   chan *wire.Message
	pongs  chan string
	closed chan struct{} // closed when the edge's side is gone
	ids    atomic.Int64
}

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	c := &fakeCloud{pki: newTestPKI(t, "edge-1"), peers: make(chan *peer, 16)}
	upgrader := websocket.Upgrader{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ConnectPath {
			http.NotFound(w, r)
			return
		}
		c.dials.Add(1)
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		p := &peer{
			t:      t,
			conn:   conn,
			node:   r.TLS.PeerCertificates[0].Subject.CommonName,
			msgs:   make(chan *wire.Message, 1000),
			pongs:  make(chan string, 16),
			closed: make(chan struct{}),
		}
		t.Cleanup(func() { _ = conn.Close() })
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Errorf("the cloud read no hello: %v", err)
			return
		}
		m, err := wire.Decode(data)
		if err != nil || m.Type != wire.TypeHello {
			t.Errorf("the first message is not a valid hello: %v, %s", err, data)
			return
		}
		p.hello = m.Hello
		conn.SetPongHandler(func(data string) error { p.pongs <- data; return nil })
		go p.readLoop()
		c.peers <- p
	}))
	c.srv.TLS = c.pki.serverTLS()
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

// url is the cloud's address as an edge is configured with it.
func (c *fakeCloud) url() string { return "wss://" + strings.TrimPrefix(c.srv.URL, "https://") }

// accept waits for the next connection that sent a Hello.
func (c *fakeCloud) accept(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-c.peers:
		return p
	case <-time.After(waitTimeout):
		t.Fatalf("no edge connected within %s", waitTimeout)
		return nil
	}
}

func (p *peer) readLoop() {
	defer close(p.closed)
	for {
		_, data, err := p.conn.ReadMessage()
		if err != nil {
			return
		}
		m, err := wire.Decode(data)
		if err != nil {
			p.t.Errorf("the edge sent an invalid message: %v: %s", err, data)
			return
		}
		p.msgs <- m
	}
}

func (p *peer) nextID() string { return fmt.Sprintf("cloud-%d", p.ids.Add(1)) }

// send encodes and writes a message from the cloud.
func (p *peer) send(m *wire.Message) {
	p.t.Helper()
	if m.ID == "" {
		m.ID = p.nextID()
	}
	data, err := wire.Encode(m)
	if err != nil {
		p.t.Fatalf("encoding %s: %v", m.Type, err)
	}
	p.sendRaw(websocket.TextMessage, data)
}

func (p *peer) sendRaw(messageType int, data []byte) {
	p.t.Helper()
	if err := p.conn.WriteMessage(messageType, data); err != nil {
		p.t.Fatalf("the cloud could not write: %v", err)
	}
}

func (p *peer) welcome(ackedSeq uint64) {
	p.t.Helper()
	p.send(&wire.Message{Type: wire.TypeWelcome, Welcome: &wire.Welcome{
		ProtocolVersion: wire.ProtocolVersion, NodeName: p.node, AckedSeq: ackedSeq,
	}})
}

// recv waits for the edge's next message.
func (p *peer) recv() *wire.Message {
	p.t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-p.closed:
		p.t.Fatal("the edge closed the connection while the cloud waited for a message")
	case <-time.After(waitTimeout):
		p.t.Fatalf("the edge sent nothing within %s", waitTimeout)
	}
	return nil
}

// close drops the connection, as a cloud that restarts does.
func (p *peer) close() { _ = p.conn.Close() }

// waitClosed waits for the edge to close its side.
func (p *peer) waitClosed() {
	p.t.Helper()
	select {
	case <-p.closed:
	case <-time.After(waitTimeout):
		p.t.Fatalf("the edge did not close the connection within %s", waitTimeout)
	}
}

// eventually polls cond until it holds or the wait times out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
