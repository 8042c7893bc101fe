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

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// EdgeNodeReconciler keeps each EdgeNode's device count and Ready summary current. The
// Connected condition belongs to CloudHub; this reconciler only fills it in for a node whose
// agent has never connected.
type EdgeNodeReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices,verbs=get;list;watch

// Reconcile recounts the node's devices and recomputes Ready.
func (r *EdgeNodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &v1alpha1.EdgeNode{}
	if err := r.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := node.DeepCopy()

	var devices v1alpha1.DeviceList
	if err := r.List(ctx, &devices, client.MatchingFields{IndexDeviceNodeName: node.Name}); err != nil {
		return ctrl.Result{}, err
	}
	st := &node.Status
	st.ObservedGeneration = node.Generation
	st.Devices = int32(len(devices.Items))
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionConnected) == nil {
		setCondition(&st.Conditions, node.Generation, v1alpha1.ConditionConnected, metav1.ConditionFalse,
			v1alpha1.ReasonNeverConnected, "the edge agent has not connected yet")
	}
	setReady(&st.Conditions, node.Generation, v1alpha1.ConditionConnected)

	if equality.Semantic.DeepEqual(before.Status, node.Status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.Status().Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// SetupWithManager watches EdgeNodes and the devices placed on them.
func (r *EdgeNodeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EdgeNode{}).
		Watches(&v1alpha1.Device{}, handler.EnqueueRequestsFromMapFunc(nodeOfDevice),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("edgenode").
		Complete(r)
}

// nodeOfDevice maps a device to its node; a device that moves recounts both nodes.
func nodeOfDevice(_ context.Context, o client.Object) []reconcile.Request {
	dev, ok := o.(*v1alpha1.Device)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: dev.Spec.NodeName}}}
}
