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
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// DefaultEdgeCleanupTimeout bounds how long a deleted device waits for its online edge node to
// remove it.
const DefaultEdgeCleanupTimeout = 30 * time.Second

// DeviceReconciler keeps each Device's derived status true to its model and its node, and
// holds a deleted device until its edge node has removed it.
type DeviceReconciler struct {
	client.Client
	// Sessions is CloudHub; nil when cloudcore runs without it (nothing to wait for then).
	Sessions Sessions
	// Clock is injected so tests control time.
	Clock clock.PassiveClock
	// EdgeCleanupTimeout bounds the wait for an online node to remove a deleted device.
	EdgeCleanupTimeout time.Duration
	// StatusWriter, when set, writes the status this controller derives (cloudcore passes
	// DeviceReports, so each device has one status writer under the shared budget); without
	// it the controller patches status itself.
	StatusWriter DeviceStatusWriter

	waits sync.Map // types.NamespacedName → time.Time: when the wait for the edge began
}

// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices/finalizers,verbs=update
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devicemodels,verbs=get;list;watch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch

// Reconcile recomputes a device's conditions from its model and node and patches its status
// when, and only when, something changed. A deleted device is released once its node removed it.
func (r *DeviceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dev := &v1alpha1.Device{}
	if err := r.Get(ctx, req.NamespacedName, dev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if dev.DeletionTimestamp != nil {
		return r.release(ctx, dev)
	}
	if !controllerutil.ContainsFinalizer(dev, v1alpha1.FinalizerEdgeCleanup) {
		before := dev.DeepCopy()
		controllerutil.AddFinalizer(dev, v1alpha1.FinalizerEdgeCleanup)
		if err := r.Patch(ctx, dev, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
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
	if r.StatusWriter != nil {
		// The writer recomputes the same status from the newest cache when its turn comes; a
		// report pending for the device goes in the same write.
		r.StatusWriter.Touch(dev.Spec.NodeName, req.NamespacedName)
		return ctrl.Result{}, nil
	}
	// The optimistic lock makes a concurrent status write (an edge report) win: this pass is
	// retried from the newer object instead of overwriting it.
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	return ctrl.Result{}, r.Status().Patch(ctx, dev, patch)
}

// DeviceStatusWriter writes a device's status, recomputed from the newest cached Device, its
// model and its node, at the next turn its budget allows (DeviceReports.Touch).
type DeviceStatusWriter interface {
	Touch(node string, name types.NamespacedName)
}

// release removes the edge-cleanup finalizer once the device's node no longer holds it, or
// at once if the node is not connected (its next resync removes the device), or when the wait
// has lasted EdgeCleanupTimeout (an unresponsive node must not block deletion for ever).
func (r *DeviceReconciler) release(ctx context.Context, dev *v1alpha1.Device) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(dev, v1alpha1.FinalizerEdgeCleanup) {
		return ctrl.Result{}, nil
	}
	if r.Sessions != nil {
		ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: dev.Namespace, Name: dev.Name}
		connected, held := r.Sessions.Holds(dev.Spec.NodeName, ref)
		if connected && held {
			waited := r.clock().Since(r.waitStart(dev))
			timeout := r.EdgeCleanupTimeout
			if timeout <= 0 {
				timeout = DefaultEdgeCleanupTimeout
			}
			if waited < timeout {
				// The acknowledgement does not wake this controller; a short poll is cheap for
				// the few devices being deleted at any time.
				return ctrl.Result{RequeueAfter: 250 * time.Millisecond}, nil
			}
			ctrl.LoggerFrom(ctx).Info("The edge node did not confirm removing the device in time; "+
				"releasing it anyway (the node's next resync removes it)",
				"node", dev.Spec.NodeName, "waited", waited.Round(time.Second))
		}
	}
	before := dev.DeepCopy()
	controllerutil.RemoveFinalizer(dev, v1alpha1.FinalizerEdgeCleanup)
	err := r.Patch(ctx, dev, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if err == nil || apierrors.IsNotFound(err) {
		r.waits.Delete(client.ObjectKeyFromObject(dev))
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// waitStart is when this cloudcore first saw the device deleted. The wait is timed on
// cloudcore's own clock rather than from deletionTimestamp, which is the API server's: a skew
// between the two must not cut the wait short or stretch it. A restarted cloudcore waits again,
// once, which keeps the bound.
func (r *DeviceReconciler) waitStart(dev *v1alpha1.Device) time.Time {
	now := r.clock().Now()
	t, _ := r.waits.LoadOrStore(client.ObjectKeyFromObject(dev), now)
	return t.(time.Time)
}

func (r *DeviceReconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
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
		// Several at once: a burst of spec changes (a rollout of new setpoints) is one status
		// write each, and one worker would make the last wait for all the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
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
	// Only the names are read: the cache's objects, not copies.
	if err := r.List(ctx, &list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing devices to enqueue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// deviceReferenceChanged passes the Device events that change which object ref (the device's node
// or model) counts it: creation, deletion, and an update that changes ref. A desired value or a
// report changes neither count, and at 100 desired values a second each recount listed every
// device of the node and the model again (docs/benchmarks.md).
func deviceReferenceChanged(ref func(*v1alpha1.Device) string) predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldDev, okOld := e.ObjectOld.(*v1alpha1.Device)
			newDev, okNew := e.ObjectNew.(*v1alpha1.Device)
			return !okOld || !okNew || ref(oldDev) != ref(newDev)
		},
	}
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
