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

package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/nodestatus"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
	"github.com/edgetwin/edgetwin/pkg/controlplane/cptest"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

var suite cptest.Suite

func TestMain(m *testing.M) { os.Exit(cptest.Run(m, &suite)) }

// rig runs Presence in its own manager with a real session tracker.
type rig struct {
	p       *Presence
	tracker *nodestatus.Tracker
	stop    func() // stops the manager (also done at cleanup)
}

func start(t *testing.T, opts Options) *rig {
	t.Helper()
	runID++
	scheme, err := controlplane.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	// Each test runs its own manager, so the controller name repeats within the process.
	mgr, err := ctrl.NewManager(suite.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: new(true)}})
	if err != nil {
		t.Fatal(err)
	}
	tracker := nodestatus.NewTracker(clock.RealClock{})
	opts.Log = ctrl.Log.WithName(t.Name())
	p := New(mgr.GetClient(), tracker, opts)
	if err := p.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &rig{p: p, tracker: tracker, stop: stop}
}

func edgeNode(t *testing.T, name string, mutate ...func(*v1alpha1.EdgeNode)) *v1alpha1.EdgeNode {
	t.Helper()
	e := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: unique(name)}}
	for _, m := range mutate {
		m(e)
	}
	if err := suite.Client.Create(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), e) })
	return e
}

// unique makes a node name unique to this run, so that -count=2 does not meet the Nodes (which
// nothing garbage-collects here) of the run before.
func unique(name string) string { return fmt.Sprintf("%s-%d", name, runID) }

// runID changes with every start, that is with every test.
var runID int

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s; last seen: %s", what, last)
}

func getNode(name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	return n, suite.Client.Get(context.Background(), types.NamespacedName{Name: name}, n)
}

func ready(n *corev1.Node) (corev1.ConditionStatus, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

func waitReady(t *testing.T, name string, status corev1.ConditionStatus, reason string) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	eventually(t, fmt.Sprintf("Node %s is Ready=%s (%s)", name, status, reason), func() (bool, string) {
		n, err := getNode(name)
		if err != nil {
			return false, err.Error()
		}
		node = n
		s, r := ready(n)
		return s == status && r == reason, fmt.Sprintf("Ready=%s (%s)", s, r)
	})
	return node
}

func TestAnEdgeNodeGetsANodeThatFollowsItsLink(t *testing.T) {
	r := start(t, Options{LeaseInterval: 200 * time.Millisecond})
	edge := edgeNode(t, "presence-a", func(e *v1alpha1.EdgeNode) {
		e.Spec.Labels = map[string]string{"site": "plant-1"}
		e.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "sensors", Effect: corev1.TaintEffectNoSchedule}}
	})

	node := waitReady(t, edge.Name, corev1.ConditionUnknown, ReasonNeverConnected)
	if _, ok := node.Labels[RoleLabel]; !ok || node.Labels["site"] != "plant-1" || node.Labels[corev1.LabelHostname] != edge.Name {
		t.Errorf("Node labels = %v, want the edge role, the EdgeNode's labels and the hostname", node.Labels)
	}
	wantTaints := []string{TaintKey + ":NoSchedule", "dedicated:NoSchedule"}
	if got := taintIDs(node); fmt.Sprint(got) != fmt.Sprint(wantTaints) {
		t.Errorf("Node taints = %v, want %v", got, wantTaints)
	}
	if len(node.OwnerReferences) != 1 || node.OwnerReferences[0].UID != edge.UID {
		t.Errorf("Node owner references = %v, want the EdgeNode (so deleting it deletes the Node)", node.OwnerReferences)
	}

	r.tracker.Connected(edge.Name, wire.AgentInfo{Version: "v0.3.0", OS: "linux", Arch: "arm64"}, wire.ProtocolVersion)
	node = waitReady(t, edge.Name, corev1.ConditionTrue, ReasonConnected)
	if node.Status.NodeInfo.KubeletVersion != "edgecore-v0.3.0" {
		t.Errorf("kubeletVersion = %q, want the agent's version", node.Status.NodeInfo.KubeletVersion)
	}
	first := waitLease(t, edge.Name, nil)
	if *first.Spec.HolderIdentity != edge.Name || len(first.OwnerReferences) != 1 || first.OwnerReferences[0].UID != node.UID {
		t.Errorf("Lease holder %q owners %v, want the node, owned by its Node", *first.Spec.HolderIdentity, first.OwnerReferences)
	}
	waitLease(t, edge.Name, first.Spec.RenewTime) // renewed again while connected

	r.tracker.Disconnected(edge.Name, "ping timeout")
	node = waitReady(t, edge.Name, corev1.ConditionUnknown, ReasonDisconnected)
	eventually(t, "renewals stop for the disconnected node", func() (bool, string) {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		_, renewing := r.p.renewed[edge.Name]
		return !renewing, "still in the renewal set"
	})

	// An EdgeNode's labels and taints follow it; taints someone else added stay.
	node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute})
	if err := suite.Client.Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	if err := suite.Client.Get(context.Background(), client.ObjectKeyFromObject(edge), edge); err != nil {
		t.Fatal(err)
	}
	edge.Spec.Labels = map[string]string{"site": "plant-2"}
	edge.Spec.Taints = nil
	if err := suite.Client.Update(context.Background(), edge); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Node follows the EdgeNode's labels and taints", func() (bool, string) {
		n, err := getNode(edge.Name)
		if err != nil {
			return false, err.Error()
		}
		got := fmt.Sprint(taintIDs(n))
		return n.Labels["site"] == "plant-2" && got == fmt.Sprint([]string{TaintKey + ":NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}),
			fmt.Sprintf("site=%q taints=%s", n.Labels["site"], got)
	})
}

// taintIDs lists a Node's taints but for the not-ready taint the API server puts on every new Node
// (kube-controller-manager, which is not running here, would take it off).
func taintIDs(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady && t.Effect == corev1.TaintEffectNoSchedule {
			continue
		}
		out = append(out, t.Key+":"+string(t.Effect))
	}
	return out
}

// waitLease waits for the node's Lease to exist with a renewTime after `after`.
func waitLease(t *testing.T, name string, after *metav1.MicroTime) *coordinationv1.Lease {
	t.Helper()
	lease := &coordinationv1.Lease{}
	eventually(t, "the Lease is renewed", func() (bool, string) {
		err := suite.Client.Get(context.Background(), types.NamespacedName{Namespace: LeaseNamespace, Name: name}, lease)
		if err != nil {
			return false, err.Error()
		}
		if lease.Spec.RenewTime == nil {
			return false, "no renewTime"
		}
		return after == nil || lease.Spec.RenewTime.After(after.Time), lease.Spec.RenewTime.String()
	})
	return lease
}

func TestNodeStatusReportsReachTheNodeBeforeTheyAreDone(t *testing.T) {
	r := start(t, Options{})
	edge := edgeNode(t, "presence-b")
	r.tracker.Connected(edge.Name, wire.AgentInfo{Version: "v1"}, wire.ProtocolVersion)
	waitReady(t, edge.Name, corev1.ConditionTrue, ReasonConnected)

	info, _ := json.Marshal(corev1.NodeSystemInfo{KubeletVersion: "edged-v1", ContainerRuntimeVersion: "containerd://1.6.20", OSImage: "Debian"})
	addrs, _ := json.Marshal([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.7"}})
	body, _ := json.Marshal(wire.NodeStatusReport{
		Capacity:    map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
		Allocatable: map[string]string{"cpu": "3500m", "memory": "7Gi", "pods": "110"},
		NodeInfo:    info, Addresses: addrs,
	})
	var done atomic.Bool
	if err := r.p.Apply(context.Background(), edge.Name, wire.Report{Seq: 1, Kind: wire.ReportKindNodeStatus, Name: edge.Name, Body: body},
		func() { done.Store(true) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the report is done", func() (bool, string) { return done.Load(), "not done" })
	// Done means written: the Node says it now, without waiting.
	n, err := getNode(edge.Name)
	if err != nil {
		t.Fatal(err)
	}
	if q := n.Status.Allocatable[corev1.ResourceCPU]; q.Cmp(resource.MustParse("3500m")) != 0 {
		t.Errorf("allocatable cpu = %s, want 3500m", q.String())
	}
	if q := n.Status.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("capacity pods = %s, want 110", q.String())
	}
	if n.Status.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" || len(n.Status.Addresses) != 1 {
		t.Errorf("nodeInfo %+v addresses %v, want the reported ones", n.Status.NodeInfo, n.Status.Addresses)
	}

	// Reports that cannot be applied are finished (so they leave the outbox) and change nothing.
	for _, bad := range []string{`{"capacity":{"cpu":"lots"}}`, `{"capacity":{"memory":"-1Gi"}}`, `not json`, `{"nodeInfo":[1]}`} {
		var finished atomic.Bool
		if err := r.p.Apply(context.Background(), edge.Name, wire.Report{Seq: 2, Kind: wire.ReportKindNodeStatus, Name: edge.Name, Body: json.RawMessage(bad)},
			func() { finished.Store(true) }); err != nil {
			t.Fatalf("Apply(%s) = %v", bad, err)
		}
		if !finished.Load() {
			t.Errorf("Apply(%s) did not finish the report at once", bad)
		}
	}
	r.p.mu.Lock()
	kept := r.p.reported[edge.Name]
	r.p.mu.Unlock()
	if kept.Capacity["cpu"] != "4" {
		t.Errorf("a bad report replaced the good one: %+v", kept)
	}
}

func TestANodeEdgetwinDidNotMakeIsLeftAlone(t *testing.T) {
	r := start(t, Options{})
	foreign := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: unique("presence-c"), Labels: map[string]string{"owner": "kubelet"}}}
	if err := suite.Client.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), foreign) })
	edge := edgeNode(t, "presence-c")
	r.tracker.Connected(edge.Name, wire.AgentInfo{Version: "v1"}, wire.ProtocolVersion)
	// A second, owned node shows the writers are working while the foreign one is untouched.
	other := edgeNode(t, "presence-c2")
	r.tracker.Connected(other.Name, wire.AgentInfo{Version: "v1"}, wire.ProtocolVersion)
	waitReady(t, other.Name, corev1.ConditionTrue, ReasonConnected)
	n, err := getNode(foreign.Name)
	if err != nil {
		t.Fatal(err)
	}
	// (The API server itself adds the not-ready taint to a new Node.)
	_, role := n.Labels[RoleLabel]
	if s, _ := ready(n); s != "" || slices.Contains(taintIDs(n), TaintKey+":NoSchedule") || role || len(n.Labels) != 1 {
		t.Errorf("the foreign Node was changed: labels %v taints %v Ready %q", n.Labels, n.Spec.Taints, s)
	}
	err = suite.Client.Get(context.Background(), types.NamespacedName{Namespace: LeaseNamespace, Name: foreign.Name}, &coordinationv1.Lease{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a Lease was written for the foreign Node: %v", err)
	}
}

func TestEveryWriteSpendsTheSharedBudget(t *testing.T) {
	reqs, err := controlplane.NewRequests(suite.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	count := func() float64 {
		var total float64

		for _, q := range []struct{ verb, res, sub string }{
			// Not PUT leases: the API server renews its own identity Lease meanwhile; the nodes'
			// Leases can only be created (POST) before they are renewed.
			{"POST", "nodes", ""}, {"PATCH", "nodes", ""}, {"PATCH", "nodes", "status"}, {"POST", "leases", ""},
		} {
			n, err := reqs.Count(ctx, q.verb, q.res, q.sub)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	before := count()
	// A budget of 4 writes and practically nothing after, for 3 connected nodes that need 9
	// (a Node, its status, its Lease each).
	limiter := rate.NewLimiter(rate.Limit(1e-6), 4)
	r := start(t, Options{Limiter: limiter})
	for _, name := range []string{"budget-a", "budget-b", "budget-c"} {
		e := edgeNode(t, name)
		r.tracker.Connected(e.Name, wire.AgentInfo{Version: "v1"}, wire.ProtocolVersion)
	}
	eventually(t, "the budget is spent", func() (bool, string) {
		n := count() - before
		return n >= 4, fmt.Sprintf("%v writes", n)
	})
	// Writes beyond the budget wait: with the limiter empty, a wait far longer than any write
	// takes shows no more were made.
	time.Sleep(2 * time.Second)
	if n := count() - before; n != 4 {
		t.Fatalf("%v node and lease writes against a budget of 4", n)
	}
}

func TestRenewIntervalStretchesWithTheFleet(t *testing.T) {
	p := New(nil, nodestatus.NewTracker(clock.RealClock{}), Options{Limiter: rate.NewLimiter(100, 100)})
	for _, tc := range []struct {
		nodes int
		want  time.Duration
	}{
		{0, 10 * time.Second}, {100, 10 * time.Second}, {500, 10 * time.Second},
		{1000, 20 * time.Second}, {10000, 200 * time.Second},
	} {
		if got := p.RenewInterval(tc.nodes); got != tc.want {
			t.Errorf("RenewInterval(%d) = %v, want %v", tc.nodes, got, tc.want)
		}
	}
}

func TestACloudcoreRestartLeavesReadyAloneWhileNodesReconnect(t *testing.T) {
	first := start(t, Options{})
	edge := edgeNode(t, "restart")
	first.tracker.Connected(edge.Name, wire.AgentInfo{Version: "v1"}, wire.ProtocolVersion)
	waitReady(t, edge.Name, corev1.ConditionTrue, ReasonConnected)
	first.stop()

	// A new cloudcore that has not heard from the node yet leaves Ready as it was; another node,
	// new to it and with no Ready at all, shows that its writers run meanwhile.
	second := start(t, Options{StartupGrace: time.Hour})
	other := edgeNode(t, "restart-other")
	waitReady(t, other.Name, corev1.ConditionUnknown, ReasonNeverConnected)
	if n, err := getNode(edge.Name); err != nil {
		t.Fatal(err)
	} else if s, r := ready(n); s != corev1.ConditionTrue {
		t.Fatalf("Ready = %s (%s) during the startup grace, want True kept", s, r)
	}
	second.stop()

	// Past the grace, a node that did not come back is Unknown.
	start(t, Options{StartupGrace: time.Nanosecond})
	waitReady(t, edge.Name, corev1.ConditionUnknown, ReasonNeverConnected)
}
