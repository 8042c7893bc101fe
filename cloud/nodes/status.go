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
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// errNoNode is returned while an EdgeNode's Node is not made yet; the write is retried quietly.
var errNoNode = fmt.Errorf("the Node does not exist yet: %w", statuswrite.ErrNotYet)

// Apply takes a NodeStatus report (reports.Applier): the newest one is kept and written into
// the Node's status, and done is called once it landed. A report that cannot be read is
// dropped (and finished) so it does not block the node's outbox.
func (p *Presence) Apply(_ context.Context, node string, r wire.Report, done func()) error {
	rep := &wire.NodeStatusReport{}
	if err := json.Unmarshal(r.Body, rep); err != nil {
		p.opts.Log.Error(err, "Dropping a NodeStatus report that cannot be read", "node", node, "seq", r.Seq)
		done()
		return nil
	}
	if _, err := nodeStatusFrom(rep); err != nil {
		p.opts.Log.Error(err, "Dropping a NodeStatus report that cannot be applied", "node", node, "seq", r.Seq)
		done()
		return nil
	}
	p.mu.Lock()
	p.reported[node] = rep
	p.mu.Unlock()
	p.status.Mark(node, done)
	return nil
}

// reportedStatus is the part of a Node's status that comes from the agent's report.
type reportedStatus struct {
	capacity, allocatable corev1.ResourceList
	info                  *corev1.NodeSystemInfo
	addresses             []corev1.NodeAddress
}

// nodeStatusFrom checks and converts a report.
func nodeStatusFrom(rep *wire.NodeStatusReport) (reportedStatus, error) {
	var out reportedStatus
	var err error
	if out.capacity, err = resources(rep.Capacity); err != nil {
		return out, fmt.Errorf("capacity: %w", err)
	}
	if out.allocatable, err = resources(rep.Allocatable); err != nil {
		return out, fmt.Errorf("allocatable: %w", err)
	}
	if len(rep.NodeInfo) > 0 {
		out.info = &corev1.NodeSystemInfo{}
		if err := json.Unmarshal(rep.NodeInfo, out.info); err != nil {
			return out, fmt.Errorf("nodeInfo: %w", err)
		}
	}
	if len(rep.Addresses) > 0 {
		if err := json.Unmarshal(rep.Addresses, &out.addresses); err != nil {
			return out, fmt.Errorf("addresses: %w", err)
		}
	}
	return out, nil
}

func resources(in map[string]string) (corev1.ResourceList, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for name, q := range in {
		v, err := resource.ParseQuantity(q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if v.Sign() < 0 {
			return nil, fmt.Errorf("%s: negative quantity %s", name, q)
		}
		out[corev1.ResourceName(name)] = v
	}
	return out, nil
}

// writeStatus writes a Node's Ready condition (from the link) and what its agent reported.
func (p *Presence) writeStatus(ctx context.Context, name string, budget statuswrite.Budget) (statuswrite.Result, error) {
	node, result, err := p.ownNode(ctx, name)
	if node == nil {
		return result, err
	}
	before := node.DeepCopy()
	p.mu.Lock()
	rep := p.reported[name]
	p.mu.Unlock()
	if rep != nil {
		st, err := nodeStatusFrom(rep)
		if err != nil { // checked in Apply
			return statuswrite.Dropped, nil
		}
		if st.capacity != nil {
			node.Status.Capacity = st.capacity
		}
		if st.allocatable != nil {
			node.Status.Allocatable = st.allocatable
		}
		if st.info != nil {
			node.Status.NodeInfo = *st.info
		}
		if st.addresses != nil {
			node.Status.Addresses = st.addresses
		}
	}
	link, seen := p.links.State(name)
	if !seen && p.inStartupGrace() && hasReady(node) {
		// Not reconnected yet since cloudcore started: keep what the last cloudcore wrote.
		return statuswrite.Unchanged, nil
	}
	if node.Status.NodeInfo.KubeletVersion == "" && link.Agent.Version != "" {
		// kubectl's VERSION column shows the agent rather than nothing.
		node.Status.NodeInfo.KubeletVersion = "edgecore-" + strings.TrimPrefix(link.Agent.Version, "edgecore-")
	}
	setReady(node, link.Connected, seen, link.Reason, metav1.NewTime(p.opts.Clock.Now()))
	if equality.Semantic.DeepEqual(before.Status, node.Status) {
		return statuswrite.Unchanged, nil
	}
	if err := budget.Spend(ctx); err != nil {
		return statuswrite.Failed, err
	}
	// The optimistic lock keeps kube-controller-manager's own Ready writes from being lost.
	if err := p.client.Status().Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return statuswrite.Failed, errNoNode
		}
		return statuswrite.Failed, err
	}
	return statuswrite.Patched, nil
}

// inStartupGrace reports whether cloudcore started less than StartupGrace ago.
func (p *Presence) inStartupGrace() bool {
	return p.opts.Clock.Since(p.started) < p.opts.StartupGrace
}

func hasReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return true
		}
	}
	return false
}

// ownNode returns the Node edgetwin made for the EdgeNode name, or nil and what to do instead:
// drop the write when the EdgeNode is gone or the Node is someone else's, retry while the Node
// is not made yet.
func (p *Presence) ownNode(ctx context.Context, name string) (*corev1.Node, statuswrite.Result, error) {
	edge := &v1alpha1.EdgeNode{}
	if err := p.client.Get(ctx, types.NamespacedName{Name: name}, edge); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, statuswrite.Dropped, nil
		}
		return nil, statuswrite.Failed, err
	}
	node := &corev1.Node{}
	if err := p.client.Get(ctx, types.NamespacedName{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, statuswrite.Failed, errNoNode
		}
		return nil, statuswrite.Failed, err
	}
	if !ownedBy(node, edge) {
		return nil, statuswrite.Dropped, nil
	}
	return node, "", nil
}

// setReady sets the Ready condition from the link: True while the agent is connected, Unknown
// otherwise (the cloud cannot tell whether the node itself is fine). The heartbeat time moves
// only when the condition changes; liveness is the Lease's job.
func setReady(node *corev1.Node, connected, seen bool, reason string, now metav1.Time) {
	want := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
		Reason: ReasonNeverConnected, Message: "edgecore has not connected to cloudcore since cloudcore started"}
	switch {
	case connected:
		want.Status, want.Reason, want.Message = corev1.ConditionTrue, ReasonConnected, "edgecore is connected to cloudcore"
	case seen:
		want.Reason, want.Message = ReasonDisconnected, "edgecore's link to cloudcore is down"
		if reason != "" {
			want.Message += " (" + reason + ")"
		}
	}
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return
		}
		if c.Status != want.Status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = want.Status, want.Reason, want.Message, now
		return
	}
	want.LastHeartbeatTime, want.LastTransitionTime = now, now
	node.Status.Conditions = append(node.Status.Conditions, want)
}

// renewLease renews (or creates) a connected node's Lease, if it is due.
func (p *Presence) renewLease(ctx context.Context, name string, budget statuswrite.Budget) (statuswrite.Result, error) {
	link, _ := p.links.State(name)
	now := p.opts.Clock.Now()
	p.mu.Lock()
	if !link.Connected {
		delete(p.renewed, name)
		p.mu.Unlock()
		return statuswrite.Unchanged, nil
	}
	last, known := p.renewed[name]
	interval := p.RenewInterval(len(p.renewed))
	p.mu.Unlock()
	if known && now.Sub(last) < interval/2 {
		return statuswrite.Unchanged, nil // renewed by a write that raced this one
	}
	node, result, err := p.ownNode(ctx, name)
	if node == nil {
		return result, err
	}
	// A Lease that outlives the renewal interval, so the Lease never looks expired to readers
	// that trust its duration while renewals are spread out.
	duration := int32(max(p.opts.LeaseDuration, 4*interval) / time.Second)
	lease := &coordinationv1.Lease{}
	err = p.client.Get(ctx, types.NamespacedName{Namespace: LeaseNamespace, Name: name}, lease)
	switch {
	case apierrors.IsNotFound(err):
		if err := budget.Spend(ctx); err != nil {
			return statuswrite.Failed, err
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: name, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: new(name), LeaseDurationSeconds: new(duration),
				RenewTime: &metav1.MicroTime{Time: now}},
		}
		if err := p.client.Create(ctx, lease); err != nil {
			return statuswrite.Failed, err
		}
	case err != nil:
		return statuswrite.Failed, err
	default:
		if err := budget.Spend(ctx); err != nil {
			return statuswrite.Failed, err
		}
		lease.Spec.HolderIdentity = new(name)
		lease.Spec.LeaseDurationSeconds = new(duration)
		lease.Spec.RenewTime = &metav1.MicroTime{Time: now}
		if err := p.client.Update(ctx, lease); err != nil {
			return statuswrite.Failed, err
		}
	}
	p.mu.Lock()
	if l, _ := p.links.State(name); l.Connected {
		p.renewed[name] = now
	}
	p.mu.Unlock()
	return statuswrite.Patched, nil
}
