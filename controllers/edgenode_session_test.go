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

package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

func newEdgeNode(t *testing.T) *v1alpha1.EdgeNode {
	t.Helper()
	node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: uniqueNode()}}
	create(t, node)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), node) })
	return node
}

// nodeStatus fetches the node and returns its status once its device count is n, which proves
// that a reconcile after the n-th device has run.
func nodeStatus(t *testing.T, node *v1alpha1.EdgeNode, devices int32) v1alpha1.EdgeNodeStatus {
	t.Helper()
	eventually(t, func() int32 {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(node), node)
		return node.Status.Devices
	}).Should(gomega.Equal(devices))
	return node.Status
}

func TestEdgeNodeStatusFollowsTheSession(t *testing.T) {
	ns := newNamespace(t)
	node := newEdgeNode(t)
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix("False/NeverConnected"))

	connectedAt := clk.Now()
	sessions.tracker.Connected(node.Name, wire.AgentInfo{Version: "v9.9.9", OS: "linux", Arch: "arm64",
		KernelVersion: "6.1.0", Addresses: []string{"10.1.2.3"}}, 1)
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix("True/SessionOpen: edgecore v9.9.9 on linux/arm64"))
	eventually(t, condition(node, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("True/Ready"))
	st := node.Status
	if st.NodeInfo.AgentVersion != "v9.9.9" || st.NodeInfo.ProtocolVersion != "v1" || st.NodeInfo.Architecture != "arm64" || st.NodeInfo.KernelVersion != "6.1.0" ||
		len(st.Addresses) != 1 || st.Addresses[0].Address != "10.1.2.3" {
		t.Fatalf("node info %+v, addresses %+v", st.NodeInfo, st.Addresses)
	}
	if st.LastHeartbeatTime == nil || !st.LastHeartbeatTime.Time.Equal(connectedAt) {
		t.Fatalf("lastHeartbeatTime = %v, want %v", st.LastHeartbeatTime, connectedAt)
	}

	// Within the heartbeat interval a reconcile leaves the heartbeat alone...
	clk.Step(heartbeatInterval / 2)
	create(t, thermostat(ns, "d1", node.Name, "20"))
	if hb := nodeStatus(t, node, 1).LastHeartbeatTime; !hb.Time.Equal(connectedAt) {
		t.Fatalf("the heartbeat was rewritten after %s: %v", heartbeatInterval/2, hb)
	}
	// ...and past it, the next reconcile rewrites it.
	clk.Step(heartbeatInterval)
	create(t, thermostat(ns, "d2", node.Name, "20"))
	if hb := nodeStatus(t, node, 2).LastHeartbeatTime; !hb.Time.Equal(clk.Now()) {
		t.Fatalf("the heartbeat is %v after %s, want %v", hb, heartbeatInterval*3/2, clk.Now())
	}

	sessions.tracker.Disconnected(node.Name, "no message or pong from the node for 1m0s")
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.Equal(
		"False/SessionClosed: no message or pong from the node for 1m0s"))
	eventually(t, condition(node, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("False/NotReady"))

	// A refused attempt shows why in the Connected condition.
	sessions.tracker.Refused(node.Name, v1alpha1.ReasonProtocolVersionRefused, "the edge speaks protocol version 9")
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.Equal(
		"False/ProtocolVersionRefused: the edge speaks protocol version 9"))
}

// TestANodeLeftConnectedByAnEarlierCloudcoreGetsAGracePeriod: after a cloudcore restart, a node
// whose status still says Connected has the grace period to reconnect before it is marked
// disconnected.
func TestANodeLeftConnectedByAnEarlierCloudcoreGetsAGracePeriod(t *testing.T) {
	ns := newNamespace(t)
	node := newEdgeNode(t)
	setConnected(t, node, true) // as an earlier cloudcore left it

	if clk.Since(suiteStart) < gracePeriod {
		create(t, thermostat(ns, "d1", node.Name, "20"))
		nodeStatus(t, node, 1)
		if got := condition(node, v1alpha1.ConditionConnected)(); got != "True/SessionOpen: set by the test" {
			t.Fatalf("within the grace period Connected = %q, want it kept", got)
		}
	}
	clk.SetTime(suiteStart.Add(gracePeriod + time.Second))
	create(t, thermostat(ns, "d2", node.Name, "20"))
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix(
		"False/SessionClosed: the edge agent has not reconnected within 5m0s of cloudcore starting"))
}

func TestDeletingAnEdgeNodeClosesItsSession(t *testing.T) {
	node := newEdgeNode(t)
	// Connect only once the cache has the node, as in cloudcore, where CloudHub admits a node
	// only if the same cache holds its EdgeNode. Before that, a reconcile finds no node, takes
	// it for deleted and forgets the session (a flake: Connected stayed NeverConnected).
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix("False/NeverConnected"))
	sessions.tracker.Connected(node.Name, wire.AgentInfo{Version: "v1"}, 1)
	eventually(t, condition(node, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix("True/SessionOpen"))
	if err := k8s.Delete(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string { return sessions.closedReason(node.Name) }).Should(gomega.Equal("NodeDeleted"))
	if _, seen := sessions.tracker.State(node.Name); seen {
		t.Fatal("the tracker still holds the deleted node's state")
	}
}
