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
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// PodStatuses writes the edge's PodStatus reports into Pods under the shared status-write budget:
// the newest report of each Pod wins, each Pod is written at most once per interval, and a report
// is done (acknowledged to the edge) only after the write carrying it landed. A node's report
// about a Pod that is not bound to it, or about an earlier Pod of the same name, is dropped.
type PodStatuses struct {
	client client.Client
	writer *statuswrite.Writer[types.NamespacedName]
	log    logr.Logger

	mu       sync.Mutex
	reported map[types.NamespacedName]*podReport
}

// podReport is a Pod's newest status from its node.
type podReport struct {
	node   string
	uid    types.UID
	status corev1.PodStatus
}

// NewPodStatuses makes the writer; c must read from the manager's cache. Add Writer() to the
// manager to start it.
func NewPodStatuses(c client.Client, opts statuswrite.Options) *PodStatuses {
	if opts.Name == "" {
		opts.Name = "pod_status"
	}
	s := &PodStatuses{client: c, log: opts.Log, reported: map[types.NamespacedName]*podReport{}}
	s.writer = statuswrite.New(opts, s.write)
	return s
}

// Writer is the runnable that writes.
func (s *PodStatuses) Writer() *statuswrite.Writer[types.NamespacedName] { return s.writer }

// Apply takes a PodStatus report (reports.Applier).
func (s *PodStatuses) Apply(_ context.Context, node string, r wire.Report, done func()) error {
	rep, err := decodePodStatus(r)
	if err != nil {
		// Never applicable: finish it so it leaves the edge's outbox.
		s.log.Error(err, "Dropping a PodStatus report that cannot be applied", "node", node, "pod", r.Namespace+"/"+r.Name)
		done()
		return nil
	}
	rep.node = node
	key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	s.mu.Lock()
	s.reported[key] = rep
	s.mu.Unlock()
	s.writer.Mark(key, done)
	return nil
}

func decodePodStatus(r wire.Report) (*podReport, error) {
	var body wire.PodStatusReport
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil, fmt.Errorf("reading PodStatus report %d: %w", r.Seq, err)
	}
	if body.UID == "" {
		return nil, errors.New("the report names no Pod UID")
	}
	rep := &podReport{uid: types.UID(body.UID)}
	if err := json.Unmarshal(body.Status, &rep.status); err != nil {
		return nil, fmt.Errorf("reading the status of PodStatus report %d: %w", r.Seq, err)
	}
	if !knownPhase(rep.status.Phase) {
		return nil, fmt.Errorf("unknown Pod phase %q", rep.status.Phase)
	}
	return rep, nil
}

func knownPhase(p corev1.PodPhase) bool {
	switch p {
	case corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
		return true
	}
	return false
}

func (s *PodStatuses) write(ctx context.Context, key types.NamespacedName, budget statuswrite.Budget) (statuswrite.Result, error) {
	s.mu.Lock()
	rep := s.reported[key]
	s.mu.Unlock()
	if rep == nil {
		return statuswrite.Unchanged, nil
	}
	result, err := s.apply(ctx, key, rep, budget)
	if err == nil {
		s.mu.Lock()
		if s.reported[key] == rep { // nothing newer arrived meanwhile
			delete(s.reported, key)
		}
		s.mu.Unlock()
	}
	return result, err
}

func (s *PodStatuses) apply(ctx context.Context, key types.NamespacedName, rep *podReport,
	budget statuswrite.Budget) (statuswrite.Result, error) {
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, key, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return statuswrite.Dropped, nil
		}
		return statuswrite.Failed, err
	}
	if pod.UID != rep.uid || pod.Spec.NodeName != rep.node {
		return statuswrite.Dropped, nil
	}
	before := pod.DeepCopy()
	mergeStatus(&pod.Status, &rep.status)
	if equality.Semantic.DeepEqual(before.Status, pod.Status) {
		return statuswrite.Unchanged, nil
	}
	if err := budget.Spend(ctx); err != nil {
		return statuswrite.Failed, err
	}
	if err := s.client.Status().Patch(ctx, pod, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return statuswrite.Dropped, nil
		}
		return statuswrite.Failed, err
	}
	return statuswrite.Patched, nil
}

// mergeStatus puts what the edge reported into st. The edge owns the phase, container statuses,
// IPs and its own conditions; conditions others set (PodScheduled by the scheduler, a
// DisruptionTarget) stay. A Pod that reached a terminal phase never leaves it, as with a kubelet.
func mergeStatus(st, rep *corev1.PodStatus) {
	if terminal(st.Phase) && st.Phase != rep.Phase {
		return
	}
	st.Phase, st.Reason, st.Message = rep.Phase, rep.Reason, rep.Message
	st.HostIP, st.HostIPs, st.PodIP, st.PodIPs = rep.HostIP, rep.HostIPs, rep.PodIP, rep.PodIPs
	if rep.StartTime != nil {
		st.StartTime = rep.StartTime
	}
	st.ContainerStatuses, st.InitContainerStatuses = rep.ContainerStatuses, rep.InitContainerStatuses
	if rep.QOSClass != "" {
		st.QOSClass = rep.QOSClass
	}
	for _, c := range rep.Conditions {
		i := -1
		for j := range st.Conditions {
			if st.Conditions[j].Type == c.Type {
				i = j
				break
			}
		}
		if i < 0 {
			st.Conditions = append(st.Conditions, c)
			continue
		}
		if st.Conditions[i].Status == c.Status {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		}
		st.Conditions[i] = c
	}
}

func terminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }
