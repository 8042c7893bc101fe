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
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// testBackoff has no jitter, so the tests know each delay exactly.
var testBackoff = Backoff{Initial: time.Second, Max: 8 * time.Second}

var testAgent = wire.AgentInfo{Version: "v0.0.0-test", OS: "linux", Arch: "arm64", Addresses: []string{"192.0.2.7"}}

// edge is a hub under test with its store and fake clock.
type edge struct {
	hub      *Hub
	store    *meta.Store
	clock    *testingclock.FakeClock
	listener *recordingListener
	// stop cancels Run and waits for it to return; the test's cleanup calls it too.
	stop func()
}

// openStore opens a store in a file of its own, closed when the test ends.
func openStore(t *testing.T, path string) *meta.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "edge.db")
	}
	s, err := meta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startEdge runs a hub against the cloud until the test ends. change adjusts the config.
func startEdge(t *testing.T, cloud *fakeCloud, store *meta.Store, change func(*Config)) *edge {
	t.Helper()
	if store == nil {
		store = openStore(t, "")
	}
	e := &edge{store: store, clock: testingclock.NewFakeClock(time.Now()), listener: &recordingListener{}}
	cfg := Config{
		URL:       cloud.url(),
		TLSConfig: cloud.pki.clientTLS(),
		Store:     store,
		Agent:     testAgent,
		Backoff:   testBackoff,
		Clock:     e.clock,
		Listener:  e.listener,
		Logger:    testr.NewWithOptions(t, testr.Options{Verbosity: 2}),
	}
	if change != nil {
		change(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.hub = h
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(waitTimeout):
				t.Errorf("Run did not return within %s of the cancel", waitTimeout)
			}
		})
	}
	// Cleanups run last-in first-out: the hub stops before the store closes.
	t.Cleanup(e.stop)
	return e
}

// redialAfter waits until the hub waits on its backoff timer, checks that the timer does not
// fire a moment early, and lets it fire.
func (e *edge) redialAfter(t *testing.T, delay time.Duration) {
	t.Helper()
	eventually(t, "the hub waits to redial", e.clock.HasWaiters)
	e.clock.Step(delay - time.Millisecond)
	if !e.clock.HasWaiters() {
		t.Fatalf("the hub redialed before its backoff of %s", delay)
	}
	e.clock.Step(time.Millisecond)
}

// recordingListener records what the hub tells a Listener.
type recordingListener struct {
	mu      sync.Mutex
	stored  []wire.ObjectRef
	deleted []wire.ObjectRef
}

func (l *recordingListener) ObjectStored(ref wire.ObjectRef, _ []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stored = append(l.stored, ref)
}

func (l *recordingListener) ObjectDeleted(ref wire.ObjectRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deleted = append(l.deleted, ref)
}

func (l *recordingListener) snapshot() (stored, deleted []wire.ObjectRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wire.ObjectRef(nil), l.stored...), append([]wire.ObjectRef(nil), l.deleted...)
}

// device names a Device in namespace ns.
func device(name, version string) wire.ObjectRef {
	return wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: name, Version: version}
}
