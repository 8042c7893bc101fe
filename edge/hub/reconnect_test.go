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
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func TestRedialsBackOffExponentiallyAndResetAfterAWelcome(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)

	// Sessions that end before a welcome double the wait each time, up to the max.
	for _, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		cloud.accept(t).close()
		e.redialAfter(t, delay)
	}
	// A session that got a welcome starts again from the initial wait.
	p := cloud.accept(t)
	p.welcome(0)
	eventually(t, "the hub is connected", e.hub.Connected)
	p.close()
	e.redialAfter(t, time.Second)
	cloud.accept(t)

	if got := cloud.dials.Load(); got != 7 {
		t.Errorf("the cloud saw %d dials, want 7", got)
	}
	if s := e.hub.Stats(); s.Dials != 7 || s.Reconnects != 6 {
		t.Errorf("stats count %d dials and %d reconnects, want 7 and 6", s.Dials, s.Reconnects)
	}
}

func TestARefusedHelloSurfacesItsReason(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.send(&wire.Message{Type: wire.TypeRefused, Refused: &wire.Refused{
		Reason: "ProtocolVersionRefused", Message: "this cloud speaks versions 3 and 4",
	}})
	p.close()

	var refused *RefusedError
	eventually(t, "the hub reports the refusal", func() bool { return errors.As(e.hub.LastError(), &refused) })
	if refused.Reason != "ProtocolVersionRefused" {
		t.Errorf("reason = %q, want ProtocolVersionRefused", refused.Reason)
	}
	if msg := e.hub.LastError().Error(); !strings.Contains(msg, "ProtocolVersionRefused") || !strings.Contains(msg, "versions 3 and 4") {
		t.Errorf("the error %q does not say the reason and the message", msg)
	}
	if e.hub.Connected() {
		t.Error("the hub says it is connected after a refusal")
	}
	// A refusal is retried, after the backoff.
	e.redialAfter(t, testBackoff.Initial)
	cloud.accept(t)
}

func TestGarbageFromTheCloudLeadsToARedial(t *testing.T) {
	tests := []struct {
		name        string
		messageType int
		frame       string
		protocolErr bool
	}{
		{name: "a frame that is not JSON", messageType: websocket.TextMessage, frame: `not json`, protocolErr: true},
		{name: "a binary frame of noise", messageType: websocket.BinaryMessage, frame: "\x00\xff\x10", protocolErr: true},
		{name: "an unknown message type", messageType: websocket.TextMessage, frame: `{"id":"1","type":"launch"}`, protocolErr: true},
		{name: "an upsert of an unknown kind", messageType: websocket.TextMessage,
			frame: `{"id":"1","type":"upsert","object":{"kind":"Gadget","name":"p","version":"v"},"body":{}}`, protocolErr: true},
		{name: "an upsert with an unknown field", messageType: websocket.TextMessage,
			frame: `{"id":"1","type":"upsert","object":{"kind":"Device","name":"d","version":"v"},"body":{},"x":1}`, protocolErr: true},
		{name: "a second welcome", messageType: websocket.TextMessage,
			frame: `{"id":"1","type":"welcome","welcome":{"protocolVersion":1,"nodeName":"edge-1"}}`, protocolErr: true},
		{name: "an ack of an object, which only the edge sends", messageType: websocket.TextMessage,
			frame: `{"id":"1","type":"ack","object":{"kind":"Device","name":"d"}}`, protocolErr: true},
		{name: "a frame over the size limit", messageType: websocket.TextMessage, frame: `"` + strings.Repeat("x", wire.MaxFrameSize) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cloud := newFakeCloud(t)
			e := startEdge(t, cloud, nil, nil)
			p := cloud.accept(t)
			p.welcome(0)
			// The edge may stop reading an oversize frame, and the write fail, before it ends.
			if err := p.conn.WriteMessage(tt.messageType, []byte(tt.frame)); err != nil && tt.protocolErr {
				t.Fatal(err)
			}
			p.waitClosed()
			e.redialAfter(t, testBackoff.Initial)
			cloud.accept(t)
			if err := e.hub.LastError(); tt.protocolErr && !errors.Is(err, ErrProtocol) {
				t.Errorf("LastError() = %v, want a protocol error", err)
			}
			if objs, err := e.store.Objects(); err != nil || len(objs) != 0 {
				t.Errorf("the store holds %v, %v after garbage; want nothing", objs, err)
			}
		})
	}
}

func TestAWrongAnswerToTheHelloLeadsToARedial(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.send(&wire.Message{Type: wire.TypeSynced})
	p.waitClosed()
	e.redialAfter(t, testBackoff.Initial)
	cloud.accept(t)
	if err := e.hub.LastError(); !errors.Is(err, ErrProtocol) {
		t.Errorf("LastError() = %v, want a protocol error", err)
	}
}
