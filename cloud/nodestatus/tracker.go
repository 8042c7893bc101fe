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

// Package nodestatus carries CloudHub's session events to the EdgeNode controller. The hub
// calls the Tracker from connection goroutines; the Tracker records the node's session state in
// memory and wakes the controller through a channel, and the controller writes EdgeNode status
// on its own schedule. Nothing here talks to the API server.
package nodestatus

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// State is a node's session state as CloudHub last reported it.
type State struct {
	// Connected is true while the node holds a session.
	Connected bool
	// Agent is what the node said of itself in its last accepted Hello.
	Agent wire.AgentInfo
	// ProtocolVersion is the protocol version of the node's session.
	ProtocolVersion int
	// Since is when the state last changed.
	Since time.Time
	// Reason and Message say why the node is not connected (a refusal or the session's end).
	Reason, Message string
}

// Tracker implements hub.StatusSink.
type Tracker struct {
	clock clock.PassiveClock

	mu    sync.Mutex
	nodes map[string]State
	dirty map[string]bool
	wake  chan struct{}
	out   chan event.GenericEvent
	// watchers are called with a node's name after its state changed.
	watchers []func(node string)
}

// NewTracker makes a tracker. Run must be running for the controller to be woken.
func NewTracker(c clock.PassiveClock) *Tracker {
	return &Tracker{clock: c, nodes: map[string]State{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1), out: make(chan event.GenericEvent)}
}

// Events is the channel the EdgeNode controller watches (through source.Channel).
func (t *Tracker) Events() <-chan event.GenericEvent { return t.out }

// Run forwards wake-ups until stop closes. Senders never block: they mark the node dirty and
// Run delivers one event per dirty node, however many changes piled up.
func (t *Tracker) Run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-t.wake:
		}
		t.mu.Lock()
		nodes := make([]string, 0, len(t.dirty))
		for n := range t.dirty {
			nodes = append(nodes, n)
		}
		clear(t.dirty)
		t.mu.Unlock()
		for _, n := range nodes {
			obj := &v1alpha1.EdgeNode{}
			obj.SetName(n)
			select {
			case t.out <- event.GenericEvent{Object: client.Object(obj)}:
			case <-stop:
				return
			}
		}
	}
}

func (t *Tracker) set(node string, update func(*State) bool) {
	t.mu.Lock()
	st := t.nodes[node]
	if !update(&st) {
		t.mu.Unlock()
		return
	}
	st.Since = t.clock.Now()
	t.nodes[node] = st
	t.dirty[node] = true
	watchers := t.watchers
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	for _, w := range watchers {
		w(node)
	}
}

// Watch calls f with a node's name every time its state changes, from the goroutine that
// changed it (a hub connection goroutine): f must return at once and never block on the API
// server. Register watchers before the hub starts.
func (t *Tracker) Watch(f func(node string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchers = append(t.watchers, f)
}

// Connected records an accepted session.
func (t *Tracker) Connected(node string, agent wire.AgentInfo, protocolVersion int) {
	t.set(node, func(s *State) bool {
		*s = State{Connected: true, Agent: agent, ProtocolVersion: protocolVersion}
		return true
	})
}

// Disconnected records the end of the node's session.
func (t *Tracker) Disconnected(node, reason string) {
	t.set(node, func(s *State) bool {
		s.Connected, s.Reason, s.Message = false, v1alpha1.ReasonSessionClosed, reason
		return true
	})
}

// Refused records a refused attempt. A refusal does not override a live session: an old
// certificate knocking does not make a connected node look disconnected.
func (t *Tracker) Refused(node, reason, message string) {
	t.set(node, func(s *State) bool {
		if s.Connected {
			return false
		}
		s.Reason, s.Message = reason, message
		return true
	})
}

// State returns the node's state, and false if the node has not been seen since cloudcore
// started.
func (t *Tracker) State(node string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.nodes[node]
	return st, ok
}

// Forget drops a node's state, when its EdgeNode is deleted.
func (t *Tracker) Forget(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.nodes, node)
	delete(t.dirty, node)
}
