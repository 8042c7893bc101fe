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

package edged

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// emptySource holds no ConfigMaps, Secrets or tokens.
type emptySource struct{}

func (emptySource) Pods() ([]*v1.Pod, error) { return nil, nil }
func (emptySource) ConfigMap(string, string) (*v1.ConfigMap, bool, error) {
	return nil, false, nil
}
func (emptySource) Secret(string, string) (*v1.Secret, bool, error) { return nil, false, nil }
func (emptySource) ServiceAccountToken(string, string) (*wire.ServiceAccountToken, bool, error) {
	return nil, false, nil
}

type discardSink struct{}

func (discardSink) PodStatus(string, string, wire.PodStatusReport) error { return nil }
func (discardSink) NodeStatus(string, wire.NodeStatusReport) error       { return nil }

// unitEdged is Edged on the fake CRI with a fake clock; the tests call syncPod themselves.
func unitEdged(t *testing.T) (*Edged, *fakeCRI, *testclock.FakeClock) {
	t.Helper()
	clk := testclock.NewFakeClock(time.Now())
	fake, endpoint := startFakeCRI(t, clk)
	e, err := New(Config{NodeName: "edge-unit", RuntimeEndpoint: endpoint, RootDir: t.TempDir(), Source: emptySource{},
		Status: discardSink{}, Clock: clk, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e, fake, clk
}

func unitPod() *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways,
			Containers: []v1.Container{{Name: "main", Image: "edgetwin.dev/workload:1", ImagePullPolicy: v1.PullIfNotPresent}}}}
}

func waitingReason(st *v1.PodStatus) (string, string) {
	if w := st.ContainerStatuses[0].State.Waiting; w != nil {
		return w.Reason, w.Message
	}
	return "", ""
}

func TestSyncErrorPaths(t *testing.T) {
	cases := []struct {
		name        string
		setup       func(f *fakeCRI, pod *v1.Pod)
		wantReason  string
		wantMessage string
	}{
		{"a failed pull shows ErrImagePull", func(f *fakeCRI, _ *v1.Pod) { f.failPull = errors.New("registry unreachable") },
			reasonErrImagePull, "registry unreachable"},
		{"an absent image under Never shows ErrImageNeverPull",
			func(_ *fakeCRI, p *v1.Pod) { p.Spec.Containers[0].ImagePullPolicy = v1.PullNever }, reasonErrImageNeverPull, "Never"},
		{"a failed create shows CreateContainerError", func(f *fakeCRI, _ *v1.Pod) { f.failCreate = errors.New("no space left") },
			reasonCreateContainer, "no space left"},
		{"a failed start shows RunContainerError", func(f *fakeCRI, _ *v1.Pod) { f.failStart = errors.New("exec format error") },
			reasonRunContainer, "exec format error"},
		{"a failed sandbox shows CreatePodSandboxError", func(f *fakeCRI, _ *v1.Pod) { f.failSandbox = errors.New("CNI is broken") },
			reasonCreatePodSandbox, "CNI is broken"},
		{"a missing ConfigMap in env shows CreateContainerConfigError", func(_ *fakeCRI, p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Key: "k"}}}}
		}, reasonCreateContainerConfig, `configmap "absent" not found`},
		{"a volume whose Secret is missing shows CreateContainerConfigError", func(_ *fakeCRI, p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "absent"}}}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "s", MountPath: "/s"}}
		}, reasonCreateContainerConfig, `secret "absent" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, fake, _ := unitEdged(t)
			pod := unitPod()
			tc.setup(fake, pod)
			w := newPodWorker(pod)
			e.syncPod(context.Background(), w, pod)
			st := w.lastStatus
			reason, msg := waitingReason(st)
			if reason != tc.wantReason || !strings.Contains(msg, tc.wantMessage) {
				t.Errorf("waiting %q %q, want %q with %q", reason, msg, tc.wantReason, tc.wantMessage)
			}
			if st.Phase != v1.PodPending {
				t.Errorf("phase %s, want Pending", st.Phase)
			}
			if len(fake.running()) != 0 {
				t.Errorf("containers run after a failure: %v", fake.running())
			}
		})
	}
}

// A failed pull is retried only after its back-off; meanwhile the status says ImagePullBackOff.
func TestImagePullBackOff(t *testing.T) {
	e, fake, clk := unitEdged(t)
	fake.failPull = errors.New("registry unreachable")
	pod := unitPod()
	w := newPodWorker(pod)
	ctx := context.Background()
	e.syncPod(ctx, w, pod)
	e.syncPod(ctx, w, pod)
	if reason, _ := waitingReason(w.lastStatus); reason != reasonImagePullBackOff || fake.pulls != 1 {
		t.Fatalf("second sync: %s after %d pulls, want ImagePullBackOff after 1", reason, fake.pulls)
	}
	fake.failPull = nil
	clk.Step(DefaultBackoffInitial + time.Second)
	e.syncPod(ctx, w, pod)
	if fake.pulls != 2 || len(fake.running()) != 1 || w.lastStatus.Phase != v1.PodRunning {
		t.Errorf("after the back-off: %d pulls, %d running, phase %s; want the pull retried and the pod Running",
			fake.pulls, len(fake.running()), w.lastStatus.Phase)
	}
}

// A crashing container restarts at once the first time, then waits 10 s, then 20 s.
func TestCrashLoopBackOff(t *testing.T) {
	e, fake, clk := unitEdged(t)
	fake.images["edgetwin.dev/workload:1"] = true
	pod := unitPod()
	w := newPodWorker(pod)
	ctx := context.Background()
	crash := func() {
		t.Helper()
		ids := fake.running()
		if len(ids) != 1 {
			t.Fatalf("%d containers running, want 1", len(ids))
		}
		fake.exit(ids[0], 1)
	}
	restarts := func() int32 { return w.lastStatus.ContainerStatuses[0].RestartCount }

	e.syncPod(ctx, w, pod)
	if w.lastStatus.Phase != v1.PodRunning || restarts() != 0 {
		t.Fatalf("first sync: %s with %d restarts", w.lastStatus.Phase, restarts())
	}
	crash()
	e.syncPod(ctx, w, pod)
	if restarts() != 1 || len(fake.running()) != 1 {
		t.Fatalf("after the first crash: %d restarts, %d running; want an immediate restart", restarts(), len(fake.running()))
	}
	crash()
	e.syncPod(ctx, w, pod)
	cs := w.lastStatus.ContainerStatuses[0]
	if reason, _ := waitingReason(w.lastStatus); reason != reasonCrashLoopBackOff || cs.LastTerminationState.Terminated == nil ||
		cs.LastTerminationState.Terminated.ExitCode != 1 || restarts() != 1 || w.lastStatus.Phase != v1.PodRunning {
		t.Fatalf("after the second crash: %+v in phase %s; want CrashLoopBackOff, last exit 1, 1 restart, Running", cs, w.lastStatus.Phase)
	}
	clk.Step(DefaultBackoffInitial - time.Second)
	e.syncPod(ctx, w, pod)
	if len(fake.running()) != 0 {
		t.Fatal("restarted before the 10 s back-off ended")
	}
	clk.Step(2 * time.Second)
	e.syncPod(ctx, w, pod)
	if restarts() != 2 || len(fake.running()) != 1 {
		t.Fatalf("after 10 s: %d restarts, %d running; want the second restart", restarts(), len(fake.running()))
	}
	crash()
	clk.Step(DefaultBackoffInitial + time.Second)
	e.syncPod(ctx, w, pod)
	if len(fake.running()) != 0 {
		t.Fatal("restarted after 11 s; the third back-off is 20 s")
	}
	clk.Step(DefaultBackoffInitial)
	e.syncPod(ctx, w, pod)
	if restarts() != 3 {
		t.Fatalf("after 21 s: %d restarts, want 3", restarts())
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "$(A)"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	cases := []struct{ name, in, want string }{
		{"a defined variable is replaced", "x $(A) y", "x alpha y"},
		{"an undefined variable is left as written", "$(C)", "$(C)"},
		{"a double dollar is an escaped dollar", "$$(A)", "$(A)"},
		{"values are not expanded again", "$(B)", "$(A)"},
		{"an unclosed reference is copied", "$(A", "$(A"},
		{"a lone dollar is copied", "cost $5 $", "cost $5 $"},
		{"an empty name is left as written", "$()", "$()"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := expand(tc.in, lookup); got != tc.want {
				t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzExpand: expansion never panics, and text without "$" comes back unchanged.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "$(A)", "$$", "$(", "a$(B)c$$(A)", "$($($()))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := expand(s, func(n string) (string, bool) { return "<" + n + ">", n != "" })
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expand(%q) = %q changed text without a reference", s, got)
		}
	})
}
