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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// DeviceReconciler keeps each Device's derived status true to its model and its node.
type DeviceReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices,verbs=get;list;watch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devicemodels,verbs=get;list;watch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch

// Reconcile recomputes a device's conditions from its model and node and patches its status
// when, and only when, something changed.
func (r *DeviceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dev := &v1alpha1.Device{}
	if err := r.Get(ctx, req.NamespacedName, dev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := dev.DeepCopy()

	model := &v1alpha1.DeviceModel{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: dev.Namespace, Name: dev.Spec.ModelRef.Name}, model); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		model = nil
	}
	node := &v1alpha1.EdgeNode{}
	if err := r.Get(ctx, types.NamespacedName{Name: dev.Spec.NodeName}, node); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		node = nil
	}

	computeDeviceStatus(dev, model, node)
	if equality.Semantic.DeepEqual(before.Status, dev.Status) {
		return ctrl.Result{}, nil
	}
	// The optimistic lock makes a concurrent status write (an edge report) win: this pass is
	// retried from the newer object instead of overwriting it.
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	return ctrl.Result{}, r.Status().Patch(ctx, dev, patch)
}

// SetupWithManager watches Devices, and the models and nodes they refer to.
func (r *DeviceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Device{}).
		Watches(&v1alpha1.DeviceModel{}, handler.EnqueueRequestsFromMapFunc(r.devicesOfModel),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.EdgeNode{}, handler.EnqueueRequestsFromMapFunc(r.devicesOfNode),
			builder.WithPredicates(connectedChanged())).
		Named("device").
		Complete(r)
}

func (r *DeviceReconciler) devicesOfModel(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexDeviceModelName: o.GetName()})
}

func (r *DeviceReconciler) devicesOfNode(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.MatchingFields{IndexDeviceNodeName: o.GetName()})
}

func (r *DeviceReconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list v1alpha1.DeviceList
	if err := r.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing devices to enqueue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// connectedChanged passes EdgeNode events that can change its devices' NodeConnected condition:
// creation, deletion, and a change of the Connected condition. Heartbeat-only status updates
// are dropped, so a busy node does not requeue all its devices.
func connectedChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldNode, okOld := e.ObjectOld.(*v1alpha1.EdgeNode)
			newNode, okNew := e.ObjectNew.(*v1alpha1.EdgeNode)
			if !okOld || !okNew {
				return true
			}
			o := meta.FindStatusCondition(oldNode.Status.Conditions, v1alpha1.ConditionConnected)
			n := meta.FindStatusCondition(newNode.Status.Conditions, v1alpha1.ConditionConnected)
			if o == nil || n == nil {
				return o != n
			}
			return o.Status != n.Status || o.Message != n.Message
		},
	}
}
