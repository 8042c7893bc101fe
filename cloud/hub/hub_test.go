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
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/pki/pkitest"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// ack answers an upsert or delete the way an edge does after storing it.
func (e *edge) ack(m *wire.Message) {
	e.t.Helper()
	ref := *m.Object
	if m.Type == wire.TypeDelete {
		ref.Version = ""
	}
	e.send(&wire.Message{ID: "a-" + m.ID, Type: wire.TypeAck, Object: &ref})
}

// syncUp reads the answer to a hello up to Synced, acking every object, and returns what came.
func (e *edge) syncUp() []string {
	e.t.Helper()
	var got []string
	for {
		m := e.recv()
		got = append(got, describe(m))
		if m.Object != nil {
			e.ack(m)
		}
		if m.Type == wire.TypeSynced {
			return got
		}
	}
}

func TestHelloIsAnsweredWithTheDifference(t *testing.T) {
	r := newRig(t, nil)
	a := r.store.set(t, "edge-1", "a", 1)
	b := r.store.set(t, "edge-1", "b", 1)
	stale := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "c", Version: "old"}

	e := r.connect("edge-1", a.Ref, stale)
	got := e.syncUp()
	want := []string{"welcome", "delete c", "upsert b@" + b.Ref.Version, "synced"} // the middle sorted
	slices.Sort(got[1:3])
	if !slices.Equal(got, want) {
		t.Fatalf("answer to the hello = %v, want %v (a is already held)", got, want)
	}
	waitFor(t, "the session to be synced", func() bool { return r.hub.Synced("edge-1") })
	if got := r.events.snapshot(); !slices.Equal(got, []string{"connected edge-1 v-test"}) {
		t.Fatalf("status events = %v", got)
	}
}

func TestChangesStreamAndStatusOnlyChangesSendNothing(t *testing.T) {
	r := newRig(t, nil)
	a := r.store.set(t, "edge-1", "a", 1)
	e := r.connect("edge-1", a.Ref)
	e.syncUp()

	// A status-only change leaves the projected body, and so the version, unchanged.
	r.hub.Changed(context.Background(), "edge-1", a.Ref)
	// A spec change is sent.
	a2 := r.store.set(t, "edge-1", "a", 2)
	r.hub.Changed(context.Background(), "edge-1", a2.Ref)
	if got := describe(e.recv()); got != "upsert a@"+a2.Ref.Version {
		t.Fatalf("first message after the changes = %q, want the upsert of version 2 only", got)
	}
	// A removal is sent as a delete.
	r.store.remove("edge-1", "a")
	r.hub.Changed(context.Background(), "edge-1", a.Ref)
	if got := describe(e.recv()); got != "delete a" {
		t.Fatalf("after the removal got %q, want a delete", got)
	}
	// Nothing else is pending: a report round trip comes back next.
	e.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{{Seq: 1, Kind: "Test", Name: "x", Body: json.RawMessage("{}")}}})
	if got := describe(e.recv()); got != "ack seq 1" {
		t.Fatalf("got %q, want only the report ack", got)
	}
}

func TestANodeReceivesOnlyItsOwnObjects(t *testing.T) {
	r := newRig(t, nil)
	r.store.set(t, "edge-1", "mine", 1)
	r.store.set(t, "edge-2", "theirs", 1)
	e := r.connect("edge-1")
	got := e.syncUp()
	if len(got) != 3 || got[1][:len("upsert mine@")] != "upsert mine@" {
		t.Fatalf("edge-1 received %v, want only its own object", got)
	}
	// A change for another node is never sent here.
	r.hub.Changed(context.Background(), "edge-1", wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "theirs"})
	e.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{{Seq: 4, Kind: "Test", Name: "x", Body: json.RawMessage("{}")}}})
	if got := describe(e.recv()); got != "ack seq 4" {
		t.Fatalf("got %q, want only the report ack", got)
	}
}

func TestRefusals(t *testing.T) {
	r := newRig(t, nil)
	r.nodes.Set("edge-1", "uid-edge-1")
	other := pkitest.NewCA(t)

	t.Run("a client without a certificate is refused before the upgrade", func(t *testing.T) {
		e, err := r.dial(nil)
		if err == nil || e.resp == nil || e.resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without a certificate: err %v, response %+v; want 401", err, e.resp)
		}
	})
	t.Run("a certificate from another CA fails the TLS handshake", func(t *testing.T) {
		cert := pkitest.NodeCertificate(t, other, "edge-1", "uid-edge-1", time.Hour)
		if _, err := r.dial(&cert); err == nil {
			t.Fatal("a certificate from another CA was accepted")
		}
	})
	t.Run("a certificate for an earlier incarnation of the node is refused", func(t *testing.T) {
		cert := pkitest.NodeCertificate(t, r.ca, "edge-1", "uid-of-a-deleted-edgenode", time.Hour)
		e, err := r.dial(&cert)
		if err == nil || e.resp == nil || e.resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial: err %v, response %+v; want 403", err, e.resp)
		}
		waitFor(t, "the refusal to be recorded on the node", func() bool {
			return r.events.count("refused edge-1 CertificateRefused") == 1
		})
	})
	t.Run("a certificate for a node that does not exist is refused", func(t *testing.T) {
		cert := pkitest.NodeCertificate(t, r.ca, "ghost", "uid-ghost", time.Hour)
		if e, err := r.dial(&cert); err == nil || e.resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial as a node without an EdgeNode: err %v; want 403", err)
		}
	})
	t.Run("an unsupported protocol version is refused with the reason", func(t *testing.T) {
		cert := pkitest.NodeCertificate(t, r.ca, "edge-1", "uid-edge-1", time.Hour)
		e, err := r.dial(&cert)
		if err != nil {
			t.Fatal(err)
		}
		e.send(&wire.Message{ID: "h", Type: wire.TypeHello, Hello: &wire.Hello{ProtocolVersion: wire.ProtocolVersion + 5}})
		m := e.recv()
		if m.Type != wire.TypeRefused || m.Refused.Reason != ReasonProtocolVersionRefused {
			t.Fatalf("got %+v, want a refusal for the protocol version", m)
		}
		waitFor(t, "the refusal to be recorded", func() bool {
			return r.events.count("refused edge-1 ProtocolVersionRefused") == 1
		})
		if r.events.count("connected edge-1 v-test") != 0 {
			t.Fatal("a refused node was reported connected")
		}
	})
}

func TestAReconnectReplacesTheOldSessionWithoutMarkingTheNodeDisconnected(t *testing.T) {
	r := newRig(t, nil)
	first := r.connect("edge-1")
	first.syncUp()
	second := r.connect("edge-1")
	second.syncUp()

	// The old connection is closed by the hub...
	if _, err := first.tryRecv(5 * time.Second); err == nil {
		t.Fatal("the replaced session still delivers messages")
	}
	// ...and its cleanup did not mark the node disconnected: the new session is live.
	if n := r.events.count("disconnected edge-1"); n != 0 {
		t.Fatalf("the replaced session's cleanup reported %d disconnects", n)
	}
	if got := r.hub.ConnectedNodes(); !slices.Equal(got, []string{"edge-1"}) {
		t.Fatalf("connected nodes = %v", got)
	}
	second.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{{Seq: 2, Kind: "Test", Name: "x", Body: json.RawMessage("{}")}}})
	if got := describe(second.recv()); got != "ack seq 2" {
		t.Fatalf("the new session answered %q", got)
	}

	_ = second.conn.Close()
	waitFor(t, "the real disconnect to be reported once", func() bool { return r.events.count("disconnected edge-1") == 1 })
}

func TestReportsAreAcknowledgedAndTheWelcomeCarriesTheAppliedSequence(t *testing.T) {
	r := newRig(t, nil)
	e := r.connect("edge-1")
	e.syncUp()
	body := json.RawMessage(`{"v":1}`)
	e.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{
		{Seq: 1, Kind: "Test", Name: "x", Body: body}, {Seq: 2, Kind: "Test", Name: "y", Body: body}, {Seq: 3, Kind: "Test", Name: "z", Body: body}}})
	if got := describe(e.recv()); got != "ack seq 3" {
		t.Fatalf("got %q, want a cumulative ack of 3", got)
	}
	_ = e.conn.Close()
	waitFor(t, "the disconnect", func() bool { return r.events.count("disconnected edge-1") == 1 })

	again := r.connect("edge-1")
	m := again.recv()
	if m.Type != wire.TypeWelcome || m.Welcome.AckedSeq != 3 {
		t.Fatalf("welcome = %+v, want AckedSeq 3", m)
	}
}

func TestASilentNodeIsDisconnected(t *testing.T) {
	r := newRig(t, func(c *Config) { c.PingInterval, c.PongWait = 50*time.Millisecond, 300*time.Millisecond })
	e := r.connect("edge-1")
	e.syncUp()
	// The edge stops reading: it answers no pings, so the hub's read deadline expires.
	waitFor(t, "the silent node to be disconnected", func() bool { return r.events.count("disconnected edge-1") == 1 })
	if len(r.hub.ConnectedNodes()) != 0 {
		t.Fatal("the silent node is still registered")
	}
}

func TestAGarbageFrameClosesOnlyThatSession(t *testing.T) {
	r := newRig(t, nil)
	bad := r.connect("edge-1")
	bad.syncUp()
	good := r.connect("edge-2")
	good.syncUp()
	if err := bad.conn.WriteMessage(1, []byte(`{"id":"x","type":"ack","seq":"not a number"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the garbage sender to be disconnected", func() bool { return r.events.count("disconnected edge-1") == 1 })
	good.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{{Seq: 1, Kind: "Test", Name: "x", Body: json.RawMessage("{}")}}})
	if got := describe(good.recv()); got != "ack seq 1" {
		t.Fatalf("the other session answered %q", got)
	}
}

func TestDisconnectClosesTheSession(t *testing.T) {
	r := newRig(t, nil)
	e := r.connect("edge-1")
	e.syncUp()
	r.hub.Disconnect("edge-1", ReasonNodeDeleted, "the EdgeNode was deleted")
	waitFor(t, "the disconnect", func() bool { return r.events.count("disconnected edge-1") == 1 })
	if _, err := e.tryRecv(5 * time.Second); err == nil {
		t.Fatal("a disconnected session still delivers messages")
	}
}

func TestAnOverflowingQueueClosesTheSessionForAResync(t *testing.T) {
	r := newRig(t, func(c *Config) { c.QueueLimit = 3 })
	e := r.connect("edge-1")
	e.syncUp()
	// The edge stops reading. Objects of 64 KiB each soon fill the socket buffers, so the
	// writer blocks and the queue must grow past its limit, however fast the writer is.
	pad := strings.Repeat("x", 64<<10)
	for i := 0; r.events.count("disconnected edge-1") == 0; i++ {
		if i == 2000 {
			t.Fatal("2000 objects (125 MiB) queued for a node that reads nothing, and the session is still open")
		}
		o := r.store.set(t, "edge-1", fmt.Sprintf("d%d", i), map[string]any{"i": i, "pad": pad})
		r.hub.Changed(context.Background(), "edge-1", o.Ref)
	}
	if r.hub.Synced("edge-1") || len(r.hub.ConnectedNodes()) != 0 {
		t.Fatal("the overflowing session is still registered")
	}
}

func TestReportsAppliedLaterAreAcknowledgedThenAndNeverBackwards(t *testing.T) {
	r := newRig(t, nil)
	e := r.connect("edge-1")
	e.syncUp()
	r.hub.Applied("edge-1", 5) // a status write carrying reports up to 5 landed
	if got := describe(e.recv()); got != "ack seq 5" {
		t.Fatalf("got %q, want the ack of 5", got)
	}
	r.hub.Applied("edge-1", 4) // an answer that arrives late acknowledges nothing
	r.hub.Applied("edge-2", 9) // a node without a session: remembered for its Welcome
	e.send(&wire.Message{ID: "r", Type: wire.TypeReport, Reports: []wire.Report{{Seq: 6, Kind: "Test", Name: "x", Body: json.RawMessage("{}")}}})
	if got := describe(e.recv()); got != "ack seq 6" {
		t.Fatalf("got %q, want only the ack of 6 (no backwards ack of 4)", got)
	}
	if m := r.connect("edge-2").recv(); m.Type != wire.TypeWelcome || m.Welcome.AckedSeq != 9 {
		t.Fatalf("edge-2's welcome = %+v, want AckedSeq 9", m)
	}
}

func TestHoldsFollowsTheEdgesAcknowledgements(t *testing.T) {
	r := newRig(t, nil)
	a := r.store.set(t, "edge-1", "a", 1)
	if connected, held := r.hub.Holds("edge-1", a.Ref); connected || held {
		t.Fatalf("Holds before any session = %v, %v; want false, false", connected, held)
	}
	e := r.connect("edge-1")
	e.syncUp()
	if connected, held := r.hub.Holds("edge-1", a.Ref); !connected || !held {
		t.Fatalf("Holds after the edge acknowledged a = %v, %v; want true, true", connected, held)
	}
	r.store.remove("edge-1", "a")
	r.hub.Changed(context.Background(), "edge-1", a.Ref)
	m := e.recv()
	if describe(m) != "delete a" {
		t.Fatalf("got %q, want the delete of a", describe(m))
	}
	// Sent but not yet acknowledged: the edge may still hold it.
	if _, held := r.hub.Holds("edge-1", a.Ref); !held {
		t.Fatal("Holds = false before the edge acknowledged the delete")
	}
	e.ack(m)
	waitFor(t, "the delete to be acknowledged", func() bool { _, held := r.hub.Holds("edge-1", a.Ref); return !held })
}

// pods is a Projection of kind Pod (protocol version 2) holding one Pod for every node.
type pods struct{ obj Object }

func (p pods) Kind() wire.Kind { return wire.KindPod }
func (p pods) List(context.Context, string) ([]Object, error) {
	return []Object{p.obj}, nil
}
func (p pods) Get(context.Context, string, wire.ObjectRef) (Object, bool, error) {
	return p.obj, true, nil
}

func TestAnOlderEdgeIsNeverSentKindsItDoesNotKnow(t *testing.T) {
	pod, err := NewObject(wire.KindPod, "default", "web", map[string]any{"spec": 1})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) { c.Projections = append(c.Projections, pods{pod}) })
	dev := r.store.set(t, "old-edge", "d", 1)
	r.store.set(t, "new-edge", "d", 1)

	old := r.connectSpeaking(wire.ProtocolVersion-1, "old-edge")
	if got, want := old.syncUp(), []string{"welcome", "upsert d@" + dev.Ref.Version, "synced"}; !slices.Equal(got, want) {
		t.Fatalf("a version %d edge got %v, want only the Device: %v", wire.ProtocolVersion-1, got, want)
	}
	// A change of the Pod is not sent either; the next thing the old edge sees is a Device.
	r.hub.Changed(context.Background(), "old-edge", pod.Ref)
	dev2 := r.store.set(t, "old-edge", "d", 2)
	r.hub.Changed(context.Background(), "old-edge", dev2.Ref)
	if m := old.recv(); describe(m) != "upsert d@"+dev2.Ref.Version {
		t.Fatalf("after a Pod and a Device change, the old edge got %s", describe(m))
	}

	current := r.connect("new-edge")
	got := current.syncUp()
	slices.Sort(got[1:3])
	if want := []string{"welcome", "upsert d@" + dev.Ref.Version, "upsert web@" + pod.Ref.Version, "synced"}; !slices.Equal(got, want) {
		t.Fatalf("a current edge got %v, want %v", got, want)
	}
}
