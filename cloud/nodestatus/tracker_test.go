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

package nodestatus

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func TestTracker(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := NewTracker(clk)
	stop := make(chan struct{})
	defer close(stop)
	go tr.Run(stop)

	next := func() string {
		t.Helper()
		select {
		case e := <-tr.Events():
			return e.Object.GetName()
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
			return ""
		}
	}

	if _, seen := tr.State("edge-1"); seen {
		t.Fatal("a node never heard of has a state")
	}
	tr.Connected("edge-1", wire.AgentInfo{Version: "v1"}, 1)
	if got := next(); got != "edge-1" {
		t.Fatalf("event for %q, want edge-1", got)
	}
	st, _ := tr.State("edge-1")
	if !st.Connected || st.Agent.Version != "v1" || !st.Since.Equal(clk.Now()) {
		t.Fatalf("state = %+v", st)
	}

	// A refusal (an old certificate knocking) does not override the live session.
	tr.Refused("edge-1", "CertificateRefused", "old certificate")
	if st, _ := tr.State("edge-1"); !st.Connected {
		t.Fatal("a refusal overrode a live session")
	}

	clk.SetTime(clk.Now().Add(time.Minute))
	tr.Disconnected("edge-1", "the connection ended")
	if got := next(); got != "edge-1" {
		t.Fatalf("event for %q", got)
	}
	if st, _ := tr.State("edge-1"); st.Connected || st.Reason != "SessionClosed" || !st.Since.Equal(clk.Now()) {
		t.Fatalf("after disconnect: %+v", st)
	}

}

// TestTrackerNeverBlocksTheHub: with nobody draining events, updates still return at once, and
// the pile of changes for a node is delivered as one event when the controller catches up.
func TestTrackerNeverBlocksTheHub(t *testing.T) {
	tr := NewTracker(clocktesting.NewFakePassiveClock(time.Now()))
	for range 1000 {
		tr.Refused("edge-2", "ProtocolVersionRefused", "v9")
		tr.Connected("edge-3", wire.AgentInfo{}, 1)
	}
	stop := make(chan struct{})
	defer close(stop)
	go tr.Run(stop)
	got := map[string]int{}
	for range 2 {
		select {
		case e := <-tr.Events():
			got[e.Object.GetName()]++
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v, want one for edge-2 and one for edge-3", got)
		}
	}
	select {
	case e := <-tr.Events():
		t.Fatalf("an extra event for %s after %v", e.Object.GetName(), got)
	case <-time.After(100 * time.Millisecond):
	}
	if got["edge-2"] != 1 || got["edge-3"] != 1 {
		t.Fatalf("events %v, want one per node", got)
	}
}
