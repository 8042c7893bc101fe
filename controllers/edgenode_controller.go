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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/nodestatus"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Sessions is what the EdgeNode controller needs of CloudHub: each node's session state, and a
// way to close a session when the node's EdgeNode is deleted.
type Sessions interface {
	// Tracker holds the session states and wakes the controller when one changes.
	Tracker() *nodestatus.Tracker
	// Disconnect closes a node's session.
	Disconnect(node, reason, message string)
	// Holds reports whether node holds a session, and whether its edge holds the object ref (or
	// will once what is queued for it arrives).
	Holds(node string, ref wire.ObjectRef) (connected, held bool)
}

// EdgeNodeReconciler keeps each EdgeNode's status true to its agent's session: Connected (from
// CloudHub), Ready, agent info, addresses, a heartbeat written at a slow interval, and the
// device count.
type EdgeNodeReconciler struct {
	client.Client
	// Sessions is CloudHub; nil when cloudcore runs without it (then Connected stays as it is,
	// or NeverConnected).
	Sessions Sessions
	// Clock is injected so tests control time.
	Clock clock.PassiveClock
	// HeartbeatInterval is how often lastHeartbeatTime is rewritten for a connected node.
	HeartbeatInterval time.Duration
	// GracePeriod is how long after cloudcore starts a node that an earlier cloudcore left
	// Connected=True may take to reconnect before it is marked disconnected.
	GracePeriod time.Duration

	started time.Time
}

// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=edgetwin.dev,resources=devices,verbs=get;list;watch

// Reconcile recomputes the node's status.
func (r *EdgeNodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &v1alpha1.EdgeNode{}
	if err := r.Get(ctx, req.NamespacedName, node); err != nil {
		if apierrors.IsNotFound(err) && r.Sessions != nil {
			// The node is gone: close its session; the hub's Authorizer refuses it from now on.
			r.Sessions.Disconnect(req.Name, "NodeDeleted", "the EdgeNode was deleted")
			r.Sessions.Tracker().Forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := node.DeepCopy()

	var devices v1alpha1.DeviceList
	// Counted only: the cache's objects are read, not copied.
	if err := r.List(ctx, &devices, client.MatchingFields{IndexDeviceNodeName: node.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	st := &node.Status
	st.ObservedGeneration = node.Generation
	st.Devices = int32(len(devices.Items))
	requeue := r.applySession(node)
	setReady(&st.Conditions, node.Generation, v1alpha1.ConditionConnected)

	result := ctrl.Result{RequeueAfter: requeue}
	if equality.Semantic.DeepEqual(before.Status, node.Status) {
		return result, nil
	}
	return result, r.Status().Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// applySession sets Connected, agent info and the heartbeat from CloudHub's view of the node,
// and returns when the node needs another look.
func (r *EdgeNodeReconciler) applySession(node *v1alpha1.EdgeNode) time.Duration {
	st := &node.Status
	gen := node.Generation
	existing := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionConnected)
	if r.Sessions == nil {
		if existing == nil {
			setCondition(&st.Conditions, gen, v1alpha1.ConditionConnected, metav1.ConditionFalse,
				v1alpha1.ReasonNeverConnected, "the edge agent has not connected yet")
		}
		return 0
	}
	now := r.Clock.Now()
	session, seen := r.Sessions.Tracker().State(node.Name)
	switch {
	case seen && session.Connected:
		a := session.Agent
		setCondition(&st.Conditions, gen, v1alpha1.ConditionConnected, metav1.ConditionTrue, v1alpha1.ReasonSessionOpen,
			fmt.Sprintf("edgecore %s on %s/%s connected at %s", a.Version, a.OS, a.Arch, session.Since.UTC().Format(time.RFC3339)))
		st.NodeInfo = v1alpha1.EdgeNodeInfo{AgentVersion: a.Version, OperatingSystem: a.OS, Architecture: a.Arch,
			KernelVersion: a.KernelVersion, ProtocolVersion: fmt.Sprintf("v%d", session.ProtocolVersion)}
		st.Addresses = nil
		for _, addr := range a.Addresses {
			st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: addr})
		}
		// The heartbeat is rewritten only at a slow interval, not on every keepalive: liveness
		// is CloudHub's job (read deadlines), this field is for people.
		if st.LastHeartbeatTime == nil || now.Sub(st.LastHeartbeatTime.Time) >= r.HeartbeatInterval {
			st.LastHeartbeatTime = &metav1.Time{Time: now}
			return r.HeartbeatInterval
		}
		return r.HeartbeatInterval - now.Sub(st.LastHeartbeatTime.Time)
	case seen:
		setCondition(&st.Conditions, gen, v1alpha1.ConditionConnected, metav1.ConditionFalse, session.Reason, session.Message)
	case existing == nil:
		setCondition(&st.Conditions, gen, v1alpha1.ConditionConnected, metav1.ConditionFalse,
			v1alpha1.ReasonNeverConnected, "the edge agent has not connected yet")
	case existing.Status == metav1.ConditionTrue:
		// An earlier cloudcore saw the node connected; give it time to reconnect here.
		if waited := now.Sub(r.started); waited < r.GracePeriod {
			return r.GracePeriod - waited
		}
		setCondition(&st.Conditions, gen, v1alpha1.ConditionConnected, metav1.ConditionFalse, v1alpha1.ReasonSessionClosed,
			fmt.Sprintf("the edge agent has not reconnected within %s of cloudcore starting", r.GracePeriod))
	}
	return 0
}

// SetupWithManager watches EdgeNodes, the devices placed on them, and CloudHub's session events.
func (r *EdgeNodeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.HeartbeatInterval <= 0 {
		r.HeartbeatInterval = 2 * time.Minute
	}
	if r.GracePeriod <= 0 {
		r.GracePeriod = 2 * time.Minute
	}
	r.started = r.Clock.Now()
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EdgeNode{}).
		Watches(&v1alpha1.Device{}, handler.EnqueueRequestsFromMapFunc(nodeOfDevice),
			builder.WithPredicates(deviceReferenceChanged(func(d *v1alpha1.Device) string { return d.Spec.NodeName })))
	if r.Sessions != nil {
		b = b.WatchesRawSource(source.Channel(r.Sessions.Tracker().Events(), &handler.EnqueueRequestForObject{}))
	}
	// Several at once: after a connect storm every node's Connected is one status write, and
	// with one worker the last of 10,000 waited minutes (docs/benchmarks.md).
	return b.Named("edgenode").WithOptions(controller.Options{MaxConcurrentReconciles: 4}).Complete(r)
}

// nodeOfDevice maps a device to its node; a device that moves recounts both nodes.
func nodeOfDevice(_ context.Context, o client.Object) []reconcile.Request {
	dev, ok := o.(*v1alpha1.Device)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: dev.Spec.NodeName}}}
}
