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

package edged_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgetwin/edgetwin/edge/edged"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

const nodeName = "edge-test"

// harness is Edged over a real SQLite store and a CRI endpoint, fed as EdgeHub feeds it: an
// object is stored, then Edged is told.
type harness struct {
	t        *testing.T
	dbPath   string
	root     string
	endpoint string
	store    *meta.Store
	edged    *edged.Edged
	cancel   context.CancelFunc
	done     chan error
	version  atomic.Int64
	// history is every pod status Edged reported, in order: the outbox keeps only the newest,
	// and a test that polls it can miss a short-lived state.
	history historySink
}

// historySink records every pod status report before it goes to the store.
type historySink struct {
	edged.StoreSink
	mu      sync.Mutex
	reports map[string][]wire.PodStatusReport // namespace/name → reports
}

func (s *historySink) PodStatus(namespace, name string, report wire.PodStatusReport) error {
	s.mu.Lock()
	if s.reports == nil {
		s.reports = map[string][]wire.PodStatusReport{}
	}
	s.reports[namespace+"/"+name] = append(s.reports[namespace+"/"+name], report)
	store := s.StoreSink
	s.mu.Unlock()
	return store.PodStatus(namespace, name, report)
}

func (s *historySink) NodeStatus(node string, report wire.NodeStatusReport) error {
	s.mu.Lock()
	store := s.StoreSink
	s.mu.Unlock()
	return store.NodeStatus(node, report)
}

// everReported reports whether any status Edged reported for p satisfied cond.
func (h *harness) everReported(p *v1.Pod, cond func(*v1.PodStatus) bool) bool {
	h.history.mu.Lock()
	reports := slices.Clone(h.history.reports[p.Namespace+"/"+p.Name])
	h.history.mu.Unlock()
	for _, r := range reports {
		st := &v1.PodStatus{}
		if json.Unmarshal(r.Status, st) == nil && cond(st) {
			return true
		}
	}
	return false
}

// sink is the harness's status sink over its current store, keeping the history.
func (h *harness) sink() *historySink {
	h.history.mu.Lock()
	h.history.StoreSink = edged.StoreSink{Store: h.store}
	h.history.mu.Unlock()
	return &h.history
}

func newHarness(t *testing.T, endpoint string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dbPath: filepath.Join(dir, "edgecore.db"), root: filepath.Join(dir, "edged"), endpoint: endpoint}
	h.openStore()
	t.Cleanup(func() {
		h.stopEdged()
		_ = h.store.Close()
	})
	return h
}

func (h *harness) openStore() {
	s, err := meta.Open(h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = s
}

// startEdged starts Edged with test back-off (200 ms doubling to 1 s) and a short sync period.
func (h *harness) startEdged() {
	h.t.Helper()
	e, err := edged.New(edged.Config{NodeName: nodeName, RuntimeEndpoint: h.endpoint, RootDir: h.root,
		Source: edged.StoreSource{Store: h.store}, Status: h.sink(),
		SyncPeriod: 200 * time.Millisecond, BackoffInitial: time.Second, BackoffMax: time.Second,
		Version: "v0.0.0-test", Logger: testr.NewWithOptions(h.t, testr.Options{Verbosity: 1})})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.edged, h.cancel, h.done = e, cancel, make(chan error, 1)
	go func() { h.done <- e.Run(ctx) }()
}

func (h *harness) stopEdged() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Edged.Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) put(kind wire.Kind, namespace, name string, obj any) {
	h.t.Helper()
	body, err := json.Marshal(obj)
	if err != nil {
		h.t.Fatal(err)
	}
	ref := wire.ObjectRef{Kind: kind, Namespace: namespace, Name: name, Version: fmt.Sprint(h.version.Add(1))}
	if err := h.store.PutObject(ref, body); err != nil {
		h.t.Fatal(err)
	}
	if h.edged != nil {
		h.edged.ObjectStored(ref, body)
	}
}

func (h *harness) putPod(p *v1.Pod) { h.put(wire.KindPod, p.Namespace, p.Name, p) }

func (h *harness) deletePod(p *v1.Pod) {
	ref := wire.ObjectRef{Kind: wire.KindPod, Namespace: p.Namespace, Name: p.Name}
	if err := h.store.DeleteObject(ref); err != nil {
		h.t.Fatal(err)
	}
	h.edged.ObjectDeleted(ref)
}

// status is the pod's status as it waits in the outbox for the cloud.
func (h *harness) status(p *v1.Pod) *v1.PodStatus {
	h.t.Helper()
	reports, err := h.store.Pending(0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var st *v1.PodStatus
	for _, r := range reports {
		if r.Kind != wire.ReportKindPodStatus || r.Namespace != p.Namespace || r.Name != p.Name {
			continue
		}
		var rep wire.PodStatusReport
		if err := json.Unmarshal(r.Body, &rep); err != nil {
			h.t.Fatal(err)
		}
		if rep.UID != string(p.UID) {
			h.t.Fatalf("a status report for %s carries UID %s, want %s", p.Name, rep.UID, p.UID)
		}
		st = &v1.PodStatus{}
		if err := json.Unmarshal(rep.Status, st); err != nil {
			h.t.Fatal(err)
		}
	}
	return st
}

// eventually polls cond until it holds, failing the test with cond's last word after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus waits until the pod's reported status satisfies cond and returns it.
func (h *harness) waitStatus(p *v1.Pod, what string, cond func(*v1.PodStatus) bool) *v1.PodStatus {
	h.t.Helper()
	var st *v1.PodStatus
	eventually(h.t, startTimeout, func() (bool, string) {
		st = h.status(p)
		if st == nil {
			return false, "no status reported for " + p.Name
		}
		raw, _ := json.Marshal(st)
		return cond(st), fmt.Sprintf("pod %s is not %s; status %s", p.Name, what, raw)
	})
	return st
}

func running(st *v1.PodStatus) bool {
	if st.Phase != v1.PodRunning {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// workloadLine reads the workload's JSON line from its container log.
func (h *harness) workloadLine(p *v1.Pod, restart int) map[string]any {
	h.t.Helper()
	path := h.edged.ContainerLogPath(p, "main", restart)
	var report map[string]any
	eventually(h.t, 30*time.Second, func() (bool, string) {
		raw, err := os.ReadFile(path)
		if err != nil {
			return false, err.Error()
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			// CRI log format: <time> <stream> <tag> <content>
			parts := strings.SplitN(line, " ", 4)
			if len(parts) == 4 && strings.HasPrefix(parts[3], "workload: {") {
				if err := json.Unmarshal([]byte(strings.TrimPrefix(parts[3], "workload: ")), &report); err != nil {
					return false, err.Error()
				}
				return true, ""
			}
		}
		return false, "no workload line in " + path + ": " + string(raw)
	})
	return report
}

var podCounter atomic.Int64

// workloadPod is a pod running the workload image with args.
func workloadPod(name string, args ...string) *v1.Pod {
	grace := int64(5)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%s-%d-%d", name, os.Getpid(), podCounter.Add(1))),
			Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{
			NodeName:                      nodeName,
			RestartPolicy:                 v1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{Name: "main", Image: "edgetwin.dev/workload:1", Args: args,
				ImagePullPolicy: v1.PullIfNotPresent}},
		},
	}
}
