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
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func TestHelloCarriesHeldObjects(t *testing.T) {
	cloud := newFakeCloud(t)
	store := openStore(t, "")
	held := []wire.ObjectRef{device("a", "v1"), device("b", "v7")}
	for _, ref := range held {
		if err := store.PutObject(ref, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	e := startEdge(t, cloud, store, nil)

	p := cloud.accept(t)
	if p.node != "edge-1" {
		t.Errorf("the cloud identified node %q from the client certificate, want edge-1", p.node)
	}
	if p.hello.ProtocolVersion != wire.ProtocolVersion {
		t.Errorf("hello protocol version = %d, want %d", p.hello.ProtocolVersion, wire.ProtocolVersion)
	}
	if p.hello.Agent.Version != testAgent.Version || p.hello.Agent.Arch != testAgent.Arch {
		t.Errorf("hello agent = %+v, want %+v", p.hello.Agent, testAgent)
	}
	if !slices.Equal(p.hello.Objects, held) {
		t.Errorf("hello objects = %v, want %v", p.hello.Objects, held)
	}
	if e.hub.Connected() {
		t.Error("the hub says it is connected before the welcome")
	}
	p.welcome(0)
	eventually(t, "the hub is connected", e.hub.Connected)
}

func TestObjectsFromTheCloudAreStoredThenAcked(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.welcome(0)

	steps := []struct {
		name    string
		send    *wire.Message
		wantAck wire.ObjectRef
		want    map[string]string // what the store then holds: name → version
	}{{
		name:    "an upsert is stored and acked with its version",
		send:    &wire.Message{Type: wire.TypeUpsert, Object: new(device("a", "v1")), Body: []byte(`{"x":1}`)},
		wantAck: device("a", "v1"),
		want:    map[string]string{"a": "v1"},
	}, {
		name:    "a newer upsert replaces the content and is acked with the new version",
		send:    &wire.Message{Type: wire.TypeUpsert, Object: new(device("a", "v2")), Body: []byte(`{"x":2}`)},
		wantAck: device("a", "v2"),
		want:    map[string]string{"a": "v2"},
	}, {
		name:    "an upsert of another object adds it",
		send:    &wire.Message{Type: wire.TypeUpsert, Object: new(device("b", "v1")), Body: []byte(`{"y":1}`)},
		wantAck: device("b", "v1"),
		want:    map[string]string{"a": "v2", "b": "v1"},
	}, {
		name:    "a delete removes the object and is acked",
		send:    &wire.Message{Type: wire.TypeDelete, Object: new(device("a", ""))},
		wantAck: device("a", ""),
		want:    map[string]string{"b": "v1"},
	}, {
		name:    "a delete of an object the edge does not hold is acked too",
		send:    &wire.Message{Type: wire.TypeDelete, Object: new(device("gone", ""))},
		wantAck: device("gone", ""),
		want:    map[string]string{"b": "v1"},
	}}
	for _, step := range steps {
		p.send(step.send)
		ack := p.recv()
		if ack.Type != wire.TypeAck || ack.Object == nil || *ack.Object != step.wantAck {
			t.Fatalf("%s: the edge answered %s %v, want an ack of %s", step.name, ack.Type, ack.Object, step.wantAck)
		}
		// The ack promises the object is stored: check right away, without waiting.
		refs, err := e.store.Objects()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range refs {
			got[r.Name] = r.Version
		}
		if !mapsEqual(got, step.want) {
			t.Errorf("%s: the store holds %v, want %v", step.name, got, step.want)
		}
	}
	obj, found, err := e.store.GetObject(device("b", ""))
	if err != nil || !found || string(obj.Body) != `{"y":1}` {
		t.Errorf("stored body of b = %s, found %v, %v; want {\"y\":1}", obj.Body, found, err)
	}
	// The writer counts a message after its write returns, which can be just after the peer has
	// read it: wait (bounded) for the counters instead of reading them once.
	counted := func(st Stats) bool {
		return st.MessagesIn >= 6 && st.MessagesOut >= 6 && st.BytesIn > 0 && st.BytesOut > 0 && st.Connected
	}
	for deadline := time.Now().Add(5 * time.Second); !counted(e.hub.Stats()) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.hub.Stats(); !counted(st) {
		t.Errorf("stats %+v do not count the traffic: want at least 6 messages each way", st)
	}
	stored, deleted := e.listener.snapshot()
	if want := []wire.ObjectRef{device("a", "v1"), device("a", "v2"), device("b", "v1")}; !slices.Equal(stored, want) {
		t.Errorf("the listener learned of stored %v, want %v", stored, want)
	}
	if want := []wire.ObjectRef{device("a", ""), device("gone", "")}; !slices.Equal(deleted, want) {
		t.Errorf("the listener learned of deleted %v, want %v", deleted, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSyncedHoldsForTheSessionThatReceivedIt(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.welcome(0)
	eventually(t, "the hub is connected", e.hub.Connected)
	if e.hub.Synced() {
		t.Fatal("the hub says it is synced before the cloud said so")
	}
	p.send(&wire.Message{Type: wire.TypeSynced})
	eventually(t, "the hub is synced", e.hub.Synced)

	p.close()
	eventually(t, "the hub is no longer synced after the connection broke", func() bool { return !e.hub.Synced() })
	if e.hub.Connected() {
		t.Error("the hub says it is connected after the connection broke")
	}
}

func TestPingsFromTheCloudAreAnswered(t *testing.T) {
	cloud := newFakeCloud(t)
	startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.welcome(0)
	if err := p.conn.WriteControl(websocket.PingMessage, []byte("keepalive-1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-p.pongs:
		if data != "keepalive-1" {
			t.Errorf("pong carries %q, want the ping's keepalive-1", data)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no pong")
	}
}

func TestASilentCloudIsDroppedAfterTheReadTimeout(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	p := cloud.accept(t)
	p.welcome(0)
	p.waitClosed()
	e.redialAfter(t, testBackoff.Initial)
	cloud.accept(t)
}

func TestStoppingTheHubClosesTheConnection(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.welcome(0)
	eventually(t, "the hub is connected", e.hub.Connected)
	e.stop()
	p.waitClosed()
	if e.hub.Connected() {
		t.Error("the hub says it is connected after Run returned")
	}
}
