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
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// committedListener is a BatchListener that checks, when it is called, that every change is
// already visible to another reader of the store: committed, not merely written.
type committedListener struct {
	t       *testing.T
	store   *meta.Store
	mu      sync.Mutex
	batches [][]Change
}

func (l *committedListener) ObjectStored(wire.ObjectRef, []byte) {
	l.t.Error("called per object; want batches")
}
func (l *committedListener) ObjectDeleted(wire.ObjectRef) {
	l.t.Error("called per object; want batches")
}

func (l *committedListener) ObjectsChanged(changes []Change) {
	last := map[string]Change{} // the store holds the last word on each object
	for _, c := range changes {
		last[c.Ref.Key()] = c
	}
	for _, c := range last {
		obj, found, err := l.store.GetObject(c.Ref)
		switch {
		case err != nil:
			l.t.Error(err)
		case c.Deleted && found:
			l.t.Errorf("the listener learned of the deletion of %s before it was committed", c.Ref)
		case !c.Deleted && (!found || obj.Ref.Version != c.Ref.Version):
			l.t.Errorf("the listener learned of %s before it was committed (store has %v, found %v)", c.Ref, obj.Ref, found)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, slices.Clone(changes))
}

// newTestSession is a session that is not connected: handleBatch stores and queues acks, which
// the test reads from s.acks.
func newTestSession(t *testing.T, store *meta.Store, l Listener) *session {
	t.Helper()
	h, err := New(Config{URL: "wss://cloud.example", TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Store: store,
		Listener: l, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &session{hub: h, log: h.cfg.Logger, acks: make(chan *wire.Message, ackQueueSize), done: make(chan struct{})}
}

func upsert(name, version string) *wire.Message {
	return &wire.Message{ID: "c-" + name + version, Type: wire.TypeUpsert, Object: new(device(name, version)), Body: []byte(`{"v":"` + version + `"}`)}
}

func queuedAcks(s *session) []wire.ObjectRef {
	var acks []wire.ObjectRef
	for {
		select {
		case m := <-s.acks:
			acks = append(acks, *m.Object)
		default:
			return acks
		}
	}
}

func TestABatchOfMessagesIsOneCommitAndAckedInOrderAfterIt(t *testing.T) {
	store := openStore(t, "")
	seq, err := store.Enqueue("DeviceTwin", "ns", "a", "p", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	l := &committedListener{t: t, store: store}
	s := newTestSession(t, store, l)
	batch := make([]*wire.Message, 0, 24)
	for i := range 20 {
		batch = append(batch, upsert(fmt.Sprintf("d%02d", i), "v1"))
	}
	batch = append(batch, upsert("d00", "v2"), // a newer version of one already in the batch
		&wire.Message{ID: "c-del", Type: wire.TypeDelete, Object: new(device("d01", ""))},
		&wire.Message{ID: "c-ack", Type: wire.TypeAck, Seq: seq},
		&wire.Message{ID: "c-synced", Type: wire.TypeSynced})

	before := store.Commits()
	if err := s.handleBatch(batch); err != nil {
		t.Fatal(err)
	}
	if got := store.Commits() - before; got != 1 {
		t.Errorf("a batch of %d messages took %d commits, want 1", len(batch), got)
	}
	if got := s.hub.Stats().Commits; got != 1 {
		t.Errorf("the hub counted %d commits, want 1", got)
	}
	// Acked in the cloud's order, every object once per message.
	want := make([]wire.ObjectRef, 0, len(batch))
	for _, m := range batch {
		if m.Object != nil {
			want = append(want, *m.Object)
		}
	}
	if got := queuedAcks(s); !slices.Equal(got, want) {
		t.Errorf("acks = %v, want %v", got, want)
	}
	// The last word on each object counts; the cloud's ack removed the report.
	refs, err := store.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 19 || refs[0] != device("d00", "v2") || slices.Contains(refs, device("d01", "v1")) {
		t.Errorf("the store holds %v, want d00 at v2, d01 deleted, 19 objects", refs)
	}
	if n, err := store.PendingCount(); err != nil || n != 0 {
		t.Errorf("the outbox holds %d reports (%v), want the acked one gone", n, err)
	}
	if len(l.batches) != 1 || len(l.batches[0]) != 22 {
		t.Errorf("the listener got %d batches, want one of 22 changes", len(l.batches))
	}
	if !s.hub.Synced() {
		t.Error("synced is not set after the batch that ends with it")
	}
}

func TestAFailedCommitStoresNothingOfTheBatchAndAcksNothing(t *testing.T) {
	path := t.TempDir() + "/edge.db"
	store := openStore(t, path)
	rec := &recordingListener{}
	s := newTestSession(t, store, rec)
	// The third message cannot be stored (no version): the transaction rolls back, as a crash
	// before the commit would leave it.
	batch := []*wire.Message{upsert("a", "v1"), upsert("b", "v1"), upsert("c", ""), upsert("d", "v1")}
	before := store.Commits()
	err := s.handleBatch(batch)
	if !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("handleBatch = %v, want the store's refusal", err)
	}
	if got := store.Commits() - before; got != 0 {
		t.Errorf("%d commits, want none", got)
	}
	if acks := queuedAcks(s); len(acks) != 0 {
		t.Errorf("acked %v although nothing was committed", acks)
	}
	if stored, deleted := rec.snapshot(); len(stored)+len(deleted) != 0 {
		t.Errorf("the listener learned of %v %v although nothing was committed", stored, deleted)
	}
	// Reopened as after a restart: nothing of the batch.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openStore(t, path)
	if refs, err := reopened.Objects(); err != nil || len(refs) != 0 {
		t.Errorf("after a restart the store holds %v (%v), want nothing of the failed batch", refs, err)
	}
}

func TestARefusalInABatchStillAppliesTheMessagesBeforeIt(t *testing.T) {
	store := openStore(t, "")
	s := newTestSession(t, store, nil)
	batch := []*wire.Message{upsert("a", "v1"),
		{ID: "r", Type: wire.TypeRefused, Refused: &wire.Refused{Reason: "NodeDeleted", Message: "gone"}},
		upsert("b", "v1")}
	var refused *RefusedError
	if err := s.handleBatch(batch); !errors.As(err, &refused) {
		t.Fatalf("handleBatch = %v, want the refusal", err)
	}
	if acks := queuedAcks(s); !slices.Equal(acks, []wire.ObjectRef{device("a", "v1")}) {
		t.Errorf("acks = %v, want a only", acks)
	}
	if refs, _ := store.Objects(); !slices.Equal(refs, []wire.ObjectRef{device("a", "v1")}) {
		t.Errorf("the store holds %v, want a only", refs)
	}
}

// Whatever the hub acked is on disk: the store is closed under the hub while the cloud streams
// objects (edgecore losing its disk, or stopping, mid-stream), then opened again.
func TestEveryAckedObjectIsStoredAfterTheStoreIsClosedMidStream(t *testing.T) {
	cloud := newFakeCloud(t)
	path := t.TempDir() + "/edge.db"
	store, err := meta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	startEdge(t, cloud, store, nil)
	p := cloud.accept(t)
	p.welcome(0)
	const n = 300
	for i := range n {
		p.send(upsert(fmt.Sprintf("d%03d", i), "v1"))
	}
	var acked []wire.ObjectRef
	for len(acked) < n/3 {
		m := p.recv()
		if m.Type == wire.TypeAck && m.Object != nil {
			acked = append(acked, *m.Object)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	// Acks already on their way count too: read until the hub drops the connection (its next
	// commit fails) or has acked everything.
	for len(acked) < n {
		select {
		case m := <-p.msgs:
			if m.Type == wire.TypeAck && m.Object != nil {
				acked = append(acked, *m.Object)
			}
			continue
		case <-p.closed:
		case <-time.After(waitTimeout):
			t.Fatalf("the hub neither acked everything nor dropped the connection within %s", waitTimeout)
		}
		break
	}
	for drained := false; !drained; {
		select {
		case m := <-p.msgs:
			if m.Type == wire.TypeAck && m.Object != nil {
				acked = append(acked, *m.Object)
			}
		default:
			drained = true
		}
	}
	reopened := openStore(t, path)
	held, err := reopened.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range acked {
		if !slices.Contains(held, ref) {
			t.Errorf("%s was acked but is not in the store after a restart", ref)
		}
	}
	t.Logf("%d acked, %d held after the restart", len(acked), len(held))
}
