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

package workloads

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
	"github.com/edgetwin/edgetwin/pkg/controlplane/cptest"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

var suite cptest.Suite

func TestMain(m *testing.M) { os.Exit(cptest.Run(m, &suite)) }

// changes records what the projections said changed.
type changes struct {
	mu   sync.Mutex
	seen map[string]bool // node + " " + ref key
}

func (c *changes) Changed(_ context.Context, node string, ref wire.ObjectRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[node+" "+ref.Key()] = true
}

func (c *changes) saw(node string, kind wire.Kind, ns, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[node+" "+wire.ObjectRef{Kind: kind, Namespace: ns, Name: name}.Key()]
}

func (c *changes) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = nil
}

// holder is CloudHub's session view as the Terminator sees it.
type holder struct {
	mu        sync.Mutex
	connected map[string]bool
	held      map[string]bool // ref key
}

func (h *holder) Holds(node string, ref wire.ObjectRef) (bool, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connected[node], h.held[ref.Key()]
}

func (h *holder) set(node string, connected bool, ref wire.ObjectRef, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connected[node] = connected
	h.held[ref.Key()] = held
}

// node names a node unique to this test (and this run of it, under -count).
func (r *rig) node(name string) string { return name + "-" + r.ns }

type rig struct {
	proj    *Projections
	changes *changes
	status  *PodStatuses
	hub     *holder
	clock   *clocktesting.FakeClock
	ns      string
}

func start(t *testing.T) *rig {
	t.Helper()
	scheme, err := controlplane.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(suite.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: new(true)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := Index(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	r := &rig{proj: NewProjections(mgr.GetClient()), changes: &changes{},
		hub:   &holder{connected: map[string]bool{}, held: map[string]bool{}},
		clock: clocktesting.NewFakeClock(time.Now())}
	r.proj.Tokens.Clock = r.clock
	if err := r.proj.Watch(ctx, mgr.GetCache(), r.changes, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.status = NewPodStatuses(mgr.GetClient(), statuswrite.Options{Log: ctrl.Log.WithName("pod-status")})
	if err := mgr.Add(r.status.Writer()); err != nil {
		t.Fatal(err)
	}
	if err := (&Terminator{Client: mgr.GetClient(), Hub: r.hub, Recheck: 50 * time.Millisecond}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "workloads-"}}
	if err := suite.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	r.ns = ns.Name
	// No kube-controller-manager here: make the default service account the Pods' tokens need.
	if err := suite.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s; last seen: %s", what, last)
}

// edgePod is a Pod as the API server holds it after admission: bound to node, with the projected
// kube-api-access volume, a ConfigMap volume, env from a Secret.
func edgePod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName: node, ServiceAccountName: "default",
			Containers: []corev1.Container{{Name: "app", Image: "edgetwin.dev/workload:1",
				Env: []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}},
			}},
			Volumes: []corev1.Volume{
				{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
				}}}},
			},
		},
	}
}

func names(objs []hub.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Ref.Namespace+"/"+o.Ref.Name)
	}
	slices.Sort(out)
	return out
}

func TestANodeHoldsItsPodsAndOnlyWhatTheyUse(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	mustCreate(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "settings"}, Data: map[string]string{"mode": "eco"}})
	mustCreate(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "unused"}, Data: map[string]string{"x": "y"}})
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}})
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "other"}, Data: map[string][]byte{"k": []byte("v")}})
	mustCreate(t, edgePod(r.ns, "on-a", r.node("node-a")))
	other := edgePod(r.ns, "on-b", r.node("node-b"))
	other.Spec.Volumes = nil
	other.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}, Key: "k"}}}}
	mustCreate(t, other)

	eventually(t, "node-a was told of its Pod and what it uses", func() (bool, string) {
		return r.changes.saw(r.node("node-a"), wire.KindPod, r.ns, "on-a") && r.changes.saw(r.node("node-a"), wire.KindConfigMap, r.ns, "settings") &&
			r.changes.saw(r.node("node-a"), wire.KindSecret, r.ns, "creds") && r.changes.saw(r.node("node-a"), wire.KindServiceAccountToken, r.ns, "on-a"), "not yet"
	})
	var pods []hub.Object
	eventually(t, "the cache holds both Pods", func() (bool, string) {
		var err error
		pods, err = r.proj.Pods.List(ctx, r.node("node-a"))
		podsB, errB := r.proj.Pods.List(ctx, r.node("node-b"))
		return err == nil && errB == nil && len(pods) == 1 && len(podsB) == 1, fmt.Sprint(names(pods), names(podsB), err, errB)
	})
	var body corev1.Pod
	if err := json.Unmarshal(pods[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.UID == "" || body.Spec.NodeName != r.node("node-a") || body.ResourceVersion != "" || body.Status.Phase != "" {
		t.Errorf("the Pod sent = uid %q node %q rv %q phase %q; want the uid and spec, without bookkeeping or status",
			body.UID, body.Spec.NodeName, body.ResourceVersion, body.Status.Phase)
	}

	cms, err := r.proj.ConfigMaps.List(ctx, r.node("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	// kube-root-ca.crt does not exist here (no controller-manager), so only settings is held.
	if got := names(cms); fmt.Sprint(got) != fmt.Sprint([]string{r.ns + "/settings"}) {
		t.Errorf("node-a's ConfigMaps = %v, want only the one its Pod uses", got)
	}
	secs, err := r.proj.Secrets.List(ctx, r.node("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(secs); fmt.Sprint(got) != fmt.Sprint([]string{r.ns + "/creds"}) {
		t.Errorf("node-a's Secrets = %v, want only creds", got)
	}
	for _, tc := range []struct {
		proj hub.Projection
		node string
		name string
		want bool
	}{
		{r.proj.Secrets, r.node("node-a"), "creds", true},
		{r.proj.Secrets, r.node("node-a"), "other", false}, // node-b's Pod uses it, not node-a's
		{r.proj.Secrets, r.node("node-b"), "other", true},
		{r.proj.ConfigMaps, r.node("node-a"), "unused", false},
		{r.proj.Pods, r.node("node-a"), "on-b", false},
		{r.proj.Pods, r.node("node-b"), "on-b", true},
		{r.proj.Tokens, r.node("node-b"), "on-b", false}, // mounts no token
	} {
		_, ok, err := tc.proj.Get(ctx, tc.node, wire.ObjectRef{Kind: tc.proj.Kind(), Namespace: r.ns, Name: tc.name})
		if err != nil || ok != tc.want {
			t.Errorf("%s Get(%s, %s) = %v, %v; want %v", tc.proj.Kind(), tc.node, tc.name, ok, err, tc.want)
		}
	}

	// A change to a Secret reaches the nodes whose Pods use it, and no other.
	r.changes.reset()
	s := &corev1.Secret{}
	if err := suite.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: "creds"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte("rotated")
	if err := suite.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node-a was told the Secret changed", func() (bool, string) {
		return r.changes.saw(r.node("node-a"), wire.KindSecret, r.ns, "creds"), "not yet"
	})
	if r.changes.saw(r.node("node-b"), wire.KindSecret, r.ns, "creds") {
		t.Error("node-b was told of a Secret none of its Pods uses")
	}
}

func mustCreate(t *testing.T, o client.Object) {
	t.Helper()
	if err := suite.Client.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func TestPodsGetABoundTokenThatIsRenewedBeforeItExpires(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	mustCreate(t, edgePod(r.ns, "app", r.node("node-t")))
	var first hub.Object
	eventually(t, "the Pod's token is issued", func() (bool, string) {
		objs, err := r.proj.Tokens.List(ctx, r.node("node-t"))
		if err != nil || len(objs) != 1 {
			return false, fmt.Sprint(len(objs), err)
		}
		first = objs[0]
		return true, ""
	})
	var tok wire.ServiceAccountToken
	if err := json.Unmarshal(first.Body, &tok); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := suite.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: "app"}, pod); err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.PodUID != string(pod.UID) || tok.ServiceAccount != "default" || !tok.ExpirationTimestamp.After(time.Now()) {
		t.Fatalf("token = %+v, want a live token bound to Pod %s", tok, pod.UID)
	}
	// Asked again before renewal, the same token comes back (no request per resync).
	again, ok, err := r.proj.Tokens.Get(ctx, r.node("node-t"), first.Ref)
	if err != nil || !ok || again.Ref.Version != first.Ref.Version {
		t.Fatalf("second Get = %v %v %v, want the kept token", again.Ref, ok, err)
	}

	r.changes.reset()
	r.clock.Step(tok.ExpirationTimestamp.Sub(r.clock.Now()) * 9 / 10) // past 80% of its life
	eventually(t, "the node is told its token is due", func() (bool, string) {
		return r.changes.saw(r.node("node-t"), wire.KindServiceAccountToken, r.ns, "app"), "not yet"
	})
	renewed, ok, err := r.proj.Tokens.Get(ctx, r.node("node-t"), first.Ref)
	if err != nil || !ok || renewed.Ref.Version == first.Ref.Version {
		t.Fatalf("Get after renewal = %v %v %v, want a new token", renewed.Ref, ok, err)
	}
}

func TestEdgeReportsBecomePodStatus(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	pod := edgePod(r.ns, "reported", r.node("node-s"))
	mustCreate(t, pod)
	// The scheduler's condition must survive the edge's writes.
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	pod.Status.Phase = corev1.PodPending
	if err := suite.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}

	report := func(node string, uid types.UID, st corev1.PodStatus) (done chan struct{}) {
		raw, _ := json.Marshal(st)
		body, _ := json.Marshal(wire.PodStatusReport{UID: string(uid), Status: raw})
		done = make(chan struct{})
		if err := r.status.Apply(ctx, node, wire.Report{Seq: 1, Kind: wire.ReportKindPodStatus, Namespace: r.ns, Name: "reported", Body: body},
			func() { close(done) }); err != nil {
			t.Fatal(err)
		}
		return done
	}
	waitDone := func(done chan struct{}) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the report was never done")
		}
	}
	get := func() *corev1.Pod {
		p := &corev1.Pod{}
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	running := corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.88.0.5", PodIPs: []corev1.PodIP{{IP: "10.88.0.5"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2, Image: "edgetwin.dev/workload:1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}}
	waitDone(report(r.node("node-s"), pod.UID, running))
	got := get() // done means written
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.88.0.5" || len(got.Status.ContainerStatuses) != 1 ||
		got.Status.ContainerStatuses[0].RestartCount != 2 {
		t.Fatalf("status = %+v, want the reported one", got.Status)
	}
	if !slices.ContainsFunc(got.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled }) ||
		!slices.ContainsFunc(got.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue }) {
		t.Errorf("conditions = %v, want the scheduler's kept and the edge's Ready added", got.Status.Conditions)
	}

	// Reports from the wrong node or about an earlier Pod of that name are dropped (and done).
	failed := corev1.PodStatus{Phase: corev1.PodFailed}
	waitDone(report(r.node("node-other"), pod.UID, failed))
	waitDone(report(r.node("node-s"), "some-old-uid", failed))
	if p := get(); p.Status.Phase != corev1.PodRunning {
		t.Fatalf("phase = %s after reports that should have been dropped", p.Status.Phase)
	}
	// Garbage is finished at once and changes nothing.
	for _, bad := range []string{`nope`, `{"uid":""}`, `{"uid":"x","status":{"phase":"Dancing"}}`} {
		finished := false
		if err := r.status.Apply(ctx, r.node("node-s"), wire.Report{Seq: 9, Kind: wire.ReportKindPodStatus, Namespace: r.ns, Name: "reported", Body: json.RawMessage(bad)},
			func() { finished = true }); err != nil || !finished {
			t.Errorf("Apply(%s) = %v, finished %v; want nil and finished at once", bad, err, finished)
		}
	}
	// A Pod that finished stays finished.
	waitDone(report(r.node("node-s"), pod.UID, corev1.PodStatus{Phase: corev1.PodSucceeded}))
	waitDone(report(r.node("node-s"), pod.UID, running))
	if p := get(); p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("phase = %s, want Succeeded kept after a late Running report", p.Status.Phase)
	}
}

func TestADeletedPodGoesOnceItsNodeLetItGo(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	edge := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: r.node("node-d")}}
	mustCreate(t, edge)
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), edge) })
	pod := edgePod(r.ns, "leaving", r.node("node-d"))
	// A finalizer-free Pod with a grace period is what a kubelet would have to finish deleting.
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	mustCreate(t, pod)
	ref := wire.ObjectRef{Kind: wire.KindPod, Namespace: r.ns, Name: "leaving"}
	r.hub.set(r.node("node-d"), false, ref, true) // offline, holding it

	if err := suite.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Pod is Terminating", func() (bool, string) {
		p := &corev1.Pod{}
		err := suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), p)
		return err == nil && p.DeletionTimestamp != nil, fmt.Sprint(err)
	})
	r.hub.set(r.node("node-d"), true, ref, true) // back, still stopping it
	// Give the terminator several rechecks with the node holding the Pod; it must stay.
	time.Sleep(300 * time.Millisecond)
	if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}); err != nil {
		t.Fatalf("the Pod went while its node still held it: %v", err)
	}
	r.hub.set(r.node("node-d"), true, ref, false) // the edge acknowledged the delete
	eventually(t, "the Pod is gone", func() (bool, string) {
		err := suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
