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
	"slices"
	"testing"
	"time"

	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// exists fetches obj and says whether it is still there; any error but NotFound fails.
func exists(t *testing.T, obj client.Object) func() bool {
	return func() bool {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("get %s: %v", obj.GetName(), err)
		}
		return err == nil
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(context.Background(), obj); err != nil {
		t.Fatalf("deleting %s: %v", obj.GetName(), err)
	}
}

// withFinalizer waits until the controller has put its finalizer on obj.
func withFinalizer(t *testing.T, obj client.Object, finalizer string) {
	t.Helper()
	eventually(t, func() []string {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		return obj.GetFinalizers()
	}).Should(gomega.ContainElement(finalizer))
}

func TestADeletedDeviceWaitsForItsNodeToRemoveIt(t *testing.T) {
	ns := newNamespace(t)
	node := uniqueNode()
	held := true
	sessions.setHolding(node, &held)
	t.Cleanup(func() { sessions.setHolding(node, nil) })
	create(t, thermostatModel(ns))
	dev := thermostat(ns, "d1", node, "20")
	create(t, dev)
	withFinalizer(t, dev, v1alpha1.FinalizerEdgeCleanup)

	remove(t, dev)
	// The node is online and still holds the device: the object stays, marked deleted.
	gomega.NewWithT(t).Consistently(exists(t, dev)).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(gomega.BeTrue())
	if dev.DeletionTimestamp == nil {
		t.Fatal("the device is not marked deleted")
	}
	// The node acknowledges the removal: the device goes.
	held = false
	sessions.setHolding(node, &held)
	eventually(t, exists(t, dev)).Should(gomega.BeFalse())
}

func TestADeletedDeviceOfAnOfflineNodeGoesAtOnce(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	dev := thermostat(ns, "d1", uniqueNode(), "20") // no session: the node is offline
	create(t, dev)
	withFinalizer(t, dev, v1alpha1.FinalizerEdgeCleanup)
	remove(t, dev)
	eventually(t, exists(t, dev)).Should(gomega.BeFalse())
}

func TestAnUnresponsiveNodeHoldsADeletedDeviceOnlyForTheTimeout(t *testing.T) {
	ns := newNamespace(t)
	node := uniqueNode()
	held := true
	sessions.setHolding(node, &held)
	t.Cleanup(func() { sessions.setHolding(node, nil) })
	create(t, thermostatModel(ns))
	dev := thermostat(ns, "d1", node, "20")
	create(t, dev)
	withFinalizer(t, dev, v1alpha1.FinalizerEdgeCleanup)

	remove(t, dev)
	gomega.NewWithT(t).Consistently(exists(t, dev)).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(gomega.BeTrue())
	clk.Step(DefaultEdgeCleanupTimeout / 2)
	gomega.NewWithT(t).Consistently(exists(t, dev)).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(gomega.BeTrue())
	clk.Step(DefaultEdgeCleanupTimeout / 2)
	eventually(t, exists(t, dev)).Should(gomega.BeFalse())
}

func TestAModelInUseIsKeptUntilNoDeviceUsesIt(t *testing.T) {
	ns := newNamespace(t)
	model := thermostatModel(ns)
	create(t, model)
	withFinalizer(t, model, v1alpha1.FinalizerInUse)
	eventually(t, condition(model, v1alpha1.ConditionInUse)).Should(gomega.HavePrefix("False/NoDevicesReferToIt"))
	d1, d2 := thermostat(ns, "d1", uniqueNode(), "20"), thermostat(ns, "d2", uniqueNode(), "21")
	create(t, d1)
	create(t, d2)
	eventually(t, condition(model, v1alpha1.ConditionInUse)).Should(gomega.Equal("True/DevicesReferToIt: used by 2 device(s): d1, d2"))

	remove(t, model)
	eventually(t, condition(model, v1alpha1.ConditionInUse)).Should(gomega.Equal(
		"True/DevicesReferToIt: used by 2 device(s): d1, d2; the model is deleted once no device uses it"))
	// The devices still resolve their model while it waits.
	eventually(t, condition(d1, v1alpha1.ConditionModelResolved)).Should(gomega.HavePrefix("True/"))

	remove(t, d1)
	eventually(t, condition(model, v1alpha1.ConditionInUse)).Should(gomega.HavePrefix("True/DevicesReferToIt: used by 1 device(s): d2;"))
	if !slices.Contains(model.Finalizers, v1alpha1.FinalizerInUse) {
		t.Fatalf("finalizers = %v; the model lost its finalizer while d2 uses it", model.Finalizers)
	}
	remove(t, d2)
	eventually(t, exists(t, model)).Should(gomega.BeFalse())
}

func TestChangingAModelRevalidatesItsDevices(t *testing.T) {
	ns := newNamespace(t)
	model := thermostatModel(ns)
	create(t, model)
	dev := thermostat(ns, "d1", uniqueNode(), "25")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.HavePrefix("True/"))

	// Lower the setpoint's maximum below the desired value: the device's value is now refused.
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(model), model); err != nil {
			return err
		}
		model.Spec.Properties[1].Maximum = new("22")
		return k8s.Update(context.Background(), model)
	}).Should(gomega.Succeed())
	eventually(t, condition(dev, v1alpha1.ConditionModelResolved)).Should(gomega.And(
		gomega.HavePrefix("False/ValueOutOfRange"), gomega.ContainSubstring("setpoint")))
}
