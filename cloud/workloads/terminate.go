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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Holder is what Terminator needs of CloudHub: whether a node is connected and still holds an
// object.
type Holder interface {
	Holds(node string, ref wire.ObjectRef) (connected, held bool)
}

// Terminator finishes the deletion of Pods on edge nodes, the kubelet's last step: a Pod being
// deleted leaves the node's projection, the edge stops it and acknowledges the delete, and then
// Terminator removes the Pod object. While the node is offline the Pod stays Terminating, as it
// would on a kubelet node, and goes once the node is back and has let it go.
type Terminator struct {
	Client client.Client
	Hub    Holder
	// Recheck is how long to wait before looking again at a Pod the edge still holds or whose
	// node is offline; default 2s.
	Recheck time.Duration
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// SetupWithManager watches Pods that are being deleted.
func (t *Terminator) SetupWithManager(mgr ctrl.Manager) error {
	if t.Recheck <= 0 {
		t.Recheck = 2 * time.Second
	}
	deleting := predicate.NewPredicateFuncs(func(o client.Object) bool {
		pod, ok := o.(*corev1.Pod)
		return ok && pod.DeletionTimestamp != nil && pod.Spec.NodeName != ""
	})
	return ctrl.NewControllerManagedBy(mgr).Named("edge-pod-termination").
		For(&corev1.Pod{}, builder.WithPredicates(deleting)).
		Complete(t)
}

// Reconcile removes a deleted Pod once its edge node no longer holds it.
func (t *Terminator) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := t.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp == nil || pod.Spec.NodeName == "" {
		return ctrl.Result{}, nil
	}
	edge := &v1alpha1.EdgeNode{}
	if err := t.Client.Get(ctx, types.NamespacedName{Name: pod.Spec.NodeName}, edge); err != nil {
		// Not an edge node: its kubelet finishes the deletion.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	connected, held := t.Hub.Holds(pod.Spec.NodeName, wire.ObjectRef{Kind: wire.KindPod, Namespace: pod.Namespace, Name: pod.Name})
	if !connected || held {
		return ctrl.Result{RequeueAfter: t.Recheck}, nil
	}
	err := t.Client.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &pod.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return ctrl.Result{}, nil // gone already, or a new Pod of the same name
	}
	return ctrl.Result{}, err
}
