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
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// The node and the model recount their devices only when a device starts or stops counting for
// them: a desired value, a report or a label does not.
func TestDeviceReferenceChanged(t *testing.T) {
	device := func(node, model, desired string) *v1alpha1.Device {
		return &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "d", Generation: 1},
			Spec: v1alpha1.DeviceSpec{NodeName: node, ModelRef: v1alpha1.ModelReference{Name: model},
				Properties: []v1alpha1.DeviceProperty{{Name: "setpoint", Desired: &desired}}}}
	}
	byNode := deviceReferenceChanged(func(d *v1alpha1.Device) string { return d.Spec.NodeName })
	byModel := deviceReferenceChanged(func(d *v1alpha1.Device) string { return d.Spec.ModelRef.Name })
	before := device("edge-1", "thermostat", "20")
	tests := []struct {
		name            string
		after           *v1alpha1.Device
		node, modelPass bool
	}{
		{"a new desired value", device("edge-1", "thermostat", "21"), false, false},
		{"a move to another node", device("edge-2", "thermostat", "20"), true, false},
		{"another model", device("edge-1", "valve", "20"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.after.Generation = 2
			e := event.UpdateEvent{ObjectOld: before, ObjectNew: tt.after}
			if got := byNode.Update(e); got != tt.node {
				t.Errorf("the node recounts: %v, want %v", got, tt.node)
			}
			if got := byModel.Update(e); got != tt.modelPass {
				t.Errorf("the model recounts: %v, want %v", got, tt.modelPass)
			}
		})
	}
	if !byNode.Create(event.CreateEvent{Object: before}) || !byNode.Delete(event.DeleteEvent{Object: before}) {
		t.Errorf("creating or deleting a device does not recount its node")
	}
}
