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
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// DeviceModelReconciler keeps each DeviceModel's counts (properties, devices using it) current,
// and keeps a model that devices still use from disappearing from under them.
type DeviceModelReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=edgetwin.dev,resources=devicemodels,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devicemodels/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devicemodels/finalizers,verbs=update
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices,verbs=get;list;watch

// Reconcile recounts the model's properties and the devices that use it, and holds a deleted
// model (finalizer) until no device uses it.
func (r *DeviceModelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	model := &v1alpha1.DeviceModel{}
	if err := r.Get(ctx, req.NamespacedName, model); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var devices v1alpha1.DeviceList
	// Counted and named only: the cache's objects are read, not copied.
	if err := r.List(ctx, &devices, client.InNamespace(model.Namespace),
		client.MatchingFields{IndexDeviceModelName: model.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	deleting := model.DeletionTimestamp != nil
	if !deleting && !controllerutil.ContainsFinalizer(model, v1alpha1.FinalizerInUse) {
		// Before anything else, so no device can come to depend on a model without it.
		before := model.DeepCopy()
		controllerutil.AddFinalizer(model, v1alpha1.FinalizerInUse)
		if err := r.Patch(ctx, model, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := model.DeepCopy()
	model.Status.ObservedGeneration = model.Generation
	model.Status.PropertyCount = int32(len(model.Spec.Properties))
	model.Status.Devices = int32(len(devices.Items))
	setInUse(model, devices.Items)
	if !equality.Semantic.DeepEqual(before.Status, model.Status) {
		if err := r.Status().Patch(ctx, model, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	if deleting && len(devices.Items) == 0 && controllerutil.ContainsFinalizer(model, v1alpha1.FinalizerInUse) {
		before := model.DeepCopy()
		controllerutil.RemoveFinalizer(model, v1alpha1.FinalizerInUse)
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		return ctrl.Result{}, client.IgnoreNotFound(r.Patch(ctx, model, patch))
	}
	return ctrl.Result{}, nil
}

// setInUse sets the InUse condition, naming the devices that use the model (a few of them).
func setInUse(model *v1alpha1.DeviceModel, devices []v1alpha1.Device) {
	gen := model.Generation
	if len(devices) == 0 {
		setCondition(&model.Status.Conditions, gen, v1alpha1.ConditionInUse, metav1.ConditionFalse, v1alpha1.ReasonNotInUse,
			"no device refers to this model")
		return
	}
	names := make([]string, 0, len(devices))
	for i := range devices {
		names = append(names, devices[i].Name)
	}
	slices.Sort(names)
	if len(names) > maxListed {
		names = append(names[:maxListed:maxListed], fmt.Sprintf("and %d more", len(devices)-maxListed))
	}
	msg := fmt.Sprintf("used by %d device(s): %s", len(devices), strings.Join(names, ", "))
	if model.DeletionTimestamp != nil {
		msg += "; the model is deleted once no device uses it"
	}
	setCondition(&model.Status.Conditions, gen, v1alpha1.ConditionInUse, metav1.ConditionTrue, v1alpha1.ReasonInUse, msg)
}

// SetupWithManager watches DeviceModels and the devices that refer to them. Only device events
// that can change the count pass: creation, deletion and spec changes (a new modelRef).
func (r *DeviceModelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.DeviceModel{}).
		Watches(&v1alpha1.Device{}, handler.EnqueueRequestsFromMapFunc(modelOfDevice),
			builder.WithPredicates(deviceReferenceChanged(func(d *v1alpha1.Device) string { return d.Spec.ModelRef.Name }))).
		Named("devicemodel").
		Complete(r)
}

// modelOfDevice maps a device to its model. On an update controller-runtime calls it for the old
// and the new object, so a device that changes model recounts both.
func modelOfDevice(_ context.Context, o client.Object) []reconcile.Request {
	dev, ok := o.(*v1alpha1.Device)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: dev.Namespace, Name: dev.Spec.ModelRef.Name}}}
}
