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
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// reconciler creates each EdgeNode's Node and asks for status and Lease writes when they are due.
type reconciler struct{ p *Presence }

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=nodes/status,verbs=patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch

func (r *reconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("edge-node-presence").
		For(&v1alpha1.EdgeNode{}).
		Owns(&corev1.Node{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// Reconcile makes sure the EdgeNode has its Node, then lets the status writer compare the rest.
func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	edge := &v1alpha1.EdgeNode{}
	if err := r.p.client.Get(ctx, req.NamespacedName, edge); err != nil {
		// A deleted EdgeNode's Node goes with it: the Node's owner reference lets the garbage
		// collector remove it, and its Lease after it.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if edge.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	node := &corev1.Node{}
	err := r.p.client.Get(ctx, types.NamespacedName{Name: edge.Name}, node)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.p.opts.Limiter.Wait(ctx); err != nil {
			return ctrl.Result{}, err
		}
		node = newNode(edge)
		if err := r.p.client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("creating Node %s: %w", edge.Name, err)
		}
	case err != nil:
		return ctrl.Result{}, err
	case !ownedBy(node, edge):
		// A Node of this name that some kubelet (or a user) made is not ours to write.
		r.p.opts.Log.Info("A Node with this EdgeNode's name exists and is not owned by it; leaving it alone",
			"node", edge.Name)
		return ctrl.Result{}, nil
	default:
		before := node.DeepCopy()
		applyManaged(node, edge)
		if !equality.Semantic.DeepEqual(before.ObjectMeta, node.ObjectMeta) || !equality.Semantic.DeepEqual(before.Spec, node.Spec) {
			if err := r.p.opts.Limiter.Wait(ctx); err != nil {
				return ctrl.Result{}, err
			}
			if err := r.p.client.Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, fmt.Errorf("updating Node %s's labels and taints: %w", edge.Name, err)
			}
		}
	}
	r.p.status.Mark(edge.Name, nil)
	if _, seen := r.p.links.State(edge.Name); !seen && r.p.inStartupGrace() {
		// Look again when the grace ends, in case the agent never comes back.
		return ctrl.Result{RequeueAfter: r.p.opts.StartupGrace - r.p.opts.Clock.Since(r.p.started)}, nil
	}
	return ctrl.Result{}, nil
}

// managedAnnotation records the labels and taints edgetwin put on a Node from its EdgeNode, so
// that one removed from the EdgeNode is removed from the Node while labels and taints others
// added (kube-controller-manager's unreachable taint, a user's label) stay.
const managedAnnotation = "edgetwin.dev/managed"

type managed struct {
	Labels []string `json:"labels,omitempty"`
	Taints []string `json:"taints,omitempty"` // key:effect
}

// newNode is the Node an EdgeNode starts with: the edge role, the standard labels a DaemonSet
// or nodeSelector expects, the edge taint, the EdgeNode's own labels and taints, and an owner
// reference to the EdgeNode.
func newNode(edge *v1alpha1.EdgeNode) *corev1.Node {
	os, arch := "linux", edge.Status.NodeInfo.Architecture
	if edge.Status.NodeInfo.OperatingSystem != "" {
		os = edge.Status.NodeInfo.OperatingSystem
	}
	labels := map[string]string{
		corev1.LabelHostname:     edge.Name,
		corev1.LabelOSStable:     os,
		"edgetwin.dev/edge-node": edge.Name,
	}
	if arch != "" {
		labels[corev1.LabelArchStable] = arch
	}
	isController := true
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   edge.Name,
			Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "EdgeNode", Name: edge.Name, UID: edge.UID,
				Controller: &isController,
			}},
		},
	}
	applyManaged(node, edge)
	return node
}

// applyManaged makes node's edgetwin-managed labels and taints those edge asks for: the role
// label, the edge taint, and the EdgeNode's spec.labels and spec.taints.
func applyManaged(node *corev1.Node, edge *v1alpha1.EdgeNode) {
	var was managed
	if raw := node.Annotations[managedAnnotation]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &was) // a mangled record only means nothing is removed
	}
	wantLabels := map[string]string{RoleLabel: ""}
	maps.Copy(wantLabels, edge.Spec.Labels)
	wantTaints := append([]corev1.Taint{{Key: TaintKey, Effect: corev1.TaintEffectNoSchedule}}, edge.Spec.Taints...)

	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for _, k := range was.Labels {
		if _, keep := wantLabels[k]; !keep {
			delete(node.Labels, k)
		}
	}
	maps.Copy(node.Labels, wantLabels)

	taintID := func(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }
	wanted := map[string]corev1.Taint{}
	for _, t := range wantTaints {
		wanted[taintID(t)] = t
	}
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		id := taintID(t)
		if w, ok := wanted[id]; ok {
			w.TimeAdded = t.TimeAdded
			taints = append(taints, w)
			delete(wanted, id)
			continue
		}
		if !slices.Contains(was.Taints, id) {
			taints = append(taints, t) // someone else's
		}
	}
	for _, t := range wantTaints { // in the EdgeNode's order
		if _, missing := wanted[taintID(t)]; missing {
			taints = append(taints, t)
		}
	}
	node.Spec.Taints = taints

	now := managed{Labels: slices.Sorted(maps.Keys(wantLabels))}
	for _, t := range wantTaints {
		now.Taints = append(now.Taints, taintID(t))
	}
	raw, _ := json.Marshal(now)
	if node.Annotations == nil {
		node.Annotations = map[string]string{}
	}
	node.Annotations[managedAnnotation] = string(raw)
}

// ownedBy reports whether node is the Node edgetwin made for edge.
func ownedBy(node *corev1.Node, edge *v1alpha1.EdgeNode) bool {
	for _, o := range node.OwnerReferences {
		if o.Kind == "EdgeNode" && o.UID == edge.UID {
			return true
		}
	}
	return false
}
