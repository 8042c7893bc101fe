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

package projection

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

func model() *v1alpha1.DeviceModel {
	return &v1alpha1.DeviceModel{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "thermostat"},
		Spec: v1alpha1.DeviceModelSpec{Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: "temperature", Type: v1alpha1.PropertyTypeDouble, Unit: "celsius"},
			{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite, Minimum: new("5"), Maximum: new("30")},
			{Name: "mode", Type: v1alpha1.PropertyTypeString, AccessMode: v1alpha1.AccessModeReadWrite},
		}},
	}
}

func device(setpoint string) *v1alpha1.Device {
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lobby", UID: "u1"},
		Spec: v1alpha1.DeviceSpec{ModelRef: v1alpha1.ModelReference{Name: "thermostat"}, NodeName: "edge-1",
			Protocol: &v1alpha1.ProtocolConfig{Name: "modbus", Config: &runtime.RawExtension{Raw: []byte(`{"slave":3}`)}},
			Properties: []v1alpha1.DeviceProperty{
				{Name: "setpoint", Desired: new(setpoint)},
				{Name: "mode", Desired: new("heat")},
				{Name: "temperature", ReportPeriod: &metav1.Duration{Duration: 5 * time.Second}},
			}},
	}
}

func TestMergeWithholdsOnlyRefusedValues(t *testing.T) {
	got := Merge(device("45"), model())
	if got.Protocol != "modbus" || string(got.ProtocolConfig) != `{"slave":3}` || got.UID != "u1" || got.Model != "thermostat" {
		t.Fatalf("header = %+v", got)
	}
	byName := map[string]wire.DeviceProperty{}
	for _, p := range got.Properties {
		byName[p.Name] = p
	}
	if len(got.Properties) != 3 || got.Properties[0].Name != "temperature" {
		t.Fatalf("properties are not the model's, in model order: %+v", got.Properties)
	}
	if byName["setpoint"].Desired != nil {
		t.Errorf("the out-of-range setpoint 45 was sent: %v", *byName["setpoint"].Desired)
	}
	if d := byName["mode"].Desired; d == nil || *d != "heat" {
		t.Errorf("the valid mode was withheld: %+v", byName["mode"])
	}
	if p := byName["temperature"]; p.AccessMode != "ReadOnly" || p.ReportPeriod != "5s" || p.Unit != "celsius" {
		t.Errorf("temperature = %+v, want ReadOnly, 5s, celsius", p)
	}
}

// TestVersionFollowsOnlyWhatTheEdgeReceives: the content version is a hash of the merged body,
// so status and metadata changes keep it, and a desired value or model change moves it.
func TestVersionFollowsOnlyWhatTheEdgeReceives(t *testing.T) {
	version := func(d *v1alpha1.Device, m *v1alpha1.DeviceModel) string {
		o, err := hub.NewObject(wire.KindDevice, d.Namespace, d.Name, Merge(d, m))
		if err != nil {
			t.Fatal(err)
		}
		var back wire.Device
		if err := json.Unmarshal(o.Body, &back); err != nil {
			t.Fatalf("the body does not decode as wire.Device: %v", err)
		}
		return o.Ref.Version
	}
	base := version(device("21"), model())

	withStatus := device("21")
	withStatus.ResourceVersion = "999"
	withStatus.Status = v1alpha1.DeviceStatus{State: v1alpha1.DeviceStateOnline, Twins: []v1alpha1.Twin{{Name: "setpoint", Reported: &v1alpha1.TwinValue{Value: "20"}}}}
	if v := version(withStatus, model()); v != base {
		t.Errorf("a status and resourceVersion change moved the version")
	}
	if v := version(device("22"), model()); v == base {
		t.Errorf("a new desired value kept the version")
	}
	m := model()
	m.Spec.Properties[1].Maximum = new("35")
	if v := version(device("21"), m); v == base {
		t.Errorf("a model change kept the version")
	}
}
