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
	"strings"
	"sync/atomic"
	"testing"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

var nodeSeq atomic.Int32

// uniqueNode returns an EdgeNode name no other test uses (EdgeNodes are cluster-scoped).
func uniqueNode() string { return fmt.Sprintf("node-%d", nodeSeq.Add(1)) }

func thermostatModel(ns string) *v1alpha1.DeviceModel {
	return &v1alpha1.DeviceModel{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "thermostat"},
		Spec: v1alpha1.DeviceModelSpec{Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: "temperature", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadOnly},
			{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite, Minimum: new("5"), Maximum: new("30")},
		}},
	}
}

func thermostat(ns, name, node, setpoint string) *v1alpha1.Device {
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DeviceSpec{
			ModelRef:   v1alpha1.ModelReference{Name: "thermostat"},
			NodeName:   node,
			Properties: []v1alpha1.DeviceProperty{{Name: "setpoint", Desired: new(setpoint)}},
		},
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// condition fetches obj and returns "Status/Reason: message" of the named condition, or "".
func condition(obj client.Object, typ string) func() string {
	return func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return "get: " + err.Error()
		}
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *v1alpha1.Device:
			conds = o.Status.Conditions
		case *v1alpha1.EdgeNode:
			conds = o.Status.Conditions
		case *v1alpha1.DeviceModel:
			conds = o.Status.Conditions
		}
		c := meta.FindStatusCondition(conds, typ)
		if c == nil {
			return ""
		}
		return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	}
}

// setConnected plays CloudHub's part for a node: it sets the Connected condition.
func setConnected(t *testing.T, node *v1alpha1.EdgeNode, connected bool) {
	t.Helper()
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		status, reason := metav1.ConditionFalse, v1alpha1.ReasonSessionClosed
		if connected {
			status, reason = metav1.ConditionTrue, v1alpha1.ReasonSessionOpen
		}
		meta.SetStatusCondition(&node.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionConnected, Status: status, Reason: reason, Message: "set by the test"})
		return k8s.Status().Update(context.Background(), node)
	}).Should(gomega.Succeed())
}

// report plays the edge's part for a device: it writes a reported value and a state to status.
func report(t *testing.T, dev *v1alpha1.Device, state v1alpha1.DeviceState, prop, value string) {
	t.Helper()
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); err != nil {
			return err
		}
		// The mapper's word is the Reachable condition; the controller derives state from it.
		status := metav1.ConditionFalse
		if state == v1alpha1.DeviceStateOnline {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&dev.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReachable, Status: status,
			Reason: v1alpha1.ReasonStateReported, Message: "set by the test"})
		dev.Status.Twins = []v1alpha1.Twin{{Name: prop, Reported: &v1alpha1.TwinValue{Value: value, Timestamp: new(metav1.NowMicro())}}}
		return k8s.Status().Update(context.Background(), dev)
	}).Should(gomega.Succeed())
}

func TestDeviceModelResolvedFollowsTheModel(t *testing.T) {
	ns := newNamespace(t)
	dev := thermostat(ns, "d1", uniqueNode(), "21.5")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.HavePrefix("False/ModelNotFound: DeviceModel \"thermostat\" does not exist"))

	// Creating the model is enough: the device is requeued through the model watch.
	create(t, thermostatModel(ns))
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.HavePrefix("True/ModelFound"))
}

func TestDeviceInvalidDesiredValueNamesTheProperty(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	dev := thermostat(ns, "d1", uniqueNode(), "45")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.And(
		gomega.HavePrefix("False/ValueOutOfRange"),
		gomega.ContainSubstring(`property "setpoint": value 45 is above the maximum 30`),
		gomega.ContainSubstring("not sent to the edge")))
	// The rejected value is not awaited either: there is nothing else desired.
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.HavePrefix("True/NothingDesired"))
	if dev.Status.ObservedGeneration != dev.Generation {
		t.Errorf("observedGeneration = %d, want %d", dev.Status.ObservedGeneration, dev.Generation)
	}

	// A desired value on a ReadOnly property is refused too, with its own reason.
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); err != nil {
			return err
		}
		dev.Spec.Properties = []v1alpha1.DeviceProperty{{Name: "temperature", Desired: new("20")}}
		return k8s.Update(context.Background(), dev)
	}).Should(gomega.Succeed())
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.And(
		gomega.HavePrefix("False/PropertyReadOnly"), gomega.ContainSubstring(`property "temperature"`)))
}

func TestDeviceConditionsFollowTheNodeAndReports(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	nodeName := uniqueNode()
	dev := thermostat(ns, "d1", nodeName, "21.5")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix(fmt.Sprintf("False/NodeNotFound: EdgeNode %q does not exist", nodeName)))
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.HavePrefix(`False/AwaitingReport: 1 of 1 desired values not yet reported back: setpoint (desired "21.5", nothing reported)`))
	eventually(t, condition(dev, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("False/NotReady"))
	if dev.Status.State != v1alpha1.DeviceStateUnknown {
		t.Errorf("state = %q, want Unknown before any report", dev.Status.State)
	}

	node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	create(t, node)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), node) })
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.And(
		gomega.HavePrefix("False/NodeDisconnected"), gomega.ContainSubstring("has not connected yet")))

	setConnected(t, node, true)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/NodeConnected"))

	// The device reports the setpoint written differently; numerically it is the same value.
	report(t, dev, v1alpha1.DeviceStateOnline, "setpoint", "21.50")
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.HavePrefix("True/Synced: all 1 desired values reported back"))
	eventually(t, condition(dev, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("True/Ready"))

	// A new desired value is pending until reported.
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); err != nil {
			return err
		}
		dev.Spec.Properties[0].Desired = new("19")
		return k8s.Update(context.Background(), dev)
	}).Should(gomega.Succeed())
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.ContainSubstring(`setpoint (desired "19", reported "21.50")`))

	// The node drops: its devices cannot be vouched for, so they turn Offline.
	setConnected(t, node, false)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("False/NodeDisconnected"))
	eventually(t, func() v1alpha1.DeviceState {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev)
		return dev.Status.State
	}).Should(gomega.Equal(v1alpha1.DeviceStateOffline))
	// The node comes back: the mapper's last word (Reachable) makes the device Online again
	// without a new report.
	setConnected(t, node, true)
	eventually(t, func() v1alpha1.DeviceState {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev)
		return dev.Status.State
	}).Should(gomega.Equal(v1alpha1.DeviceStateOnline))
	// What only the edge knows is carried forward untouched.
	if len(dev.Status.Twins) != 1 || dev.Status.Twins[0].Reported.Value != "21.50" {
		t.Errorf("twins = %+v, want the reported setpoint 21.50 kept", dev.Status.Twins)
	}
}

func TestModelAndNodeCountTheirDevices(t *testing.T) {
	ns := newNamespace(t)
	model := thermostatModel(ns)
	create(t, model)
	other := thermostatModel(ns)
	other.Name = "other"
	create(t, other)
	nodeA := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: uniqueNode()}}
	nodeB := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: uniqueNode()}}
	create(t, nodeA)
	create(t, nodeB)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), nodeA); _ = k8s.Delete(context.Background(), nodeB) })

	d1 := thermostat(ns, "d1", nodeA.Name, "20")
	d2 := thermostat(ns, "d2", nodeA.Name, "20")
	create(t, d1)
	create(t, d2)

	models := func(m *v1alpha1.DeviceModel) func() string {
		return func() string {
			_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(m), m)
			return fmt.Sprintf("devices=%d properties=%d", m.Status.Devices, m.Status.PropertyCount)
		}
	}
	nodes := func(n *v1alpha1.EdgeNode) func() int32 {
		return func() int32 {
			_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(n), n)
			return n.Status.Devices
		}
	}
	eventually(t, models(model)).Should(gomega.Equal("devices=2 properties=2"))
	eventually(t, nodes(nodeA)).Should(gomega.Equal(int32(2)))
	eventually(t, condition(nodeA, v1alpha1.ConditionConnected)).Should(gomega.HavePrefix("False/NeverConnected"))
	eventually(t, condition(nodeA, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("False/NotReady: not yet: Connected"))

	// Moving d2 to the other model and the other node recounts all four objects.
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(d2), d2); err != nil {
			return err
		}
		d2.Spec.ModelRef.Name = "other"
		d2.Spec.NodeName = nodeB.Name
		return k8s.Update(context.Background(), d2)
	}).Should(gomega.Succeed())
	eventually(t, models(model)).Should(gomega.Equal("devices=1 properties=2"))
	eventually(t, models(other)).Should(gomega.Equal("devices=1 properties=2"))
	eventually(t, nodes(nodeA)).Should(gomega.Equal(int32(1)))
	eventually(t, nodes(nodeB)).Should(gomega.Equal(int32(1)))

	// Deleting a device recounts too.
	if err := k8s.Delete(context.Background(), d1); err != nil {
		t.Fatal(err)
	}
	eventually(t, models(model)).Should(gomega.Equal("devices=0 properties=2"))
	eventually(t, nodes(nodeA)).Should(gomega.Equal(int32(0)))

	// The Connected condition belongs to CloudHub: once set, the reconciler keeps it and
	// derives Ready from it.
	setConnected(t, nodeB, true)
	eventually(t, condition(nodeB, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("True/Ready"))
	if got := condition(nodeB, v1alpha1.ConditionConnected)(); !strings.HasPrefix(got, "True/SessionOpen") {
		t.Errorf("Connected = %q, want the hub's True/SessionOpen kept", got)
	}
}
