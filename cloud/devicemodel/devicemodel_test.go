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

package devicemodel

import (
	"testing"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/property"
)

// pkg/property cannot import the API (the edge links it without any Kubernetes code), so it
// spells the API's property types and reasons itself; they must stay the same strings.
func TestPropertySpellsTheAPIsWords(t *testing.T) {
	for _, tt := range []struct{ api, property string }{
		{string(v1alpha1.PropertyTypeInt), property.TypeInt},
		{string(v1alpha1.PropertyTypeFloat), property.TypeFloat},
		{string(v1alpha1.PropertyTypeDouble), property.TypeDouble},
		{string(v1alpha1.PropertyTypeString), property.TypeString},
		{string(v1alpha1.PropertyTypeBoolean), property.TypeBoolean},
		{string(v1alpha1.PropertyTypeBytes), property.TypeBytes},
		{v1alpha1.ReasonUnknownProperty, property.ReasonUnknownProperty},
		{v1alpha1.ReasonPropertyReadOnly, property.ReasonPropertyReadOnly},
		{v1alpha1.ReasonInvalidValue, property.ReasonInvalidValue},
		{v1alpha1.ReasonValueOutOfRange, property.ReasonValueOutOfRange},
	} {
		if tt.api != tt.property {
			t.Errorf("the API says %q where pkg/property says %q", tt.api, tt.property)
		}
	}
	for _, typ := range []v1alpha1.PropertyType{v1alpha1.PropertyTypeInt, v1alpha1.PropertyTypeFloat, v1alpha1.PropertyTypeDouble,
		v1alpha1.PropertyTypeString, v1alpha1.PropertyTypeBoolean, v1alpha1.PropertyTypeBytes} {
		if typ.IsNumeric() != property.IsNumeric(string(typ)) {
			t.Errorf("%s: the API and pkg/property disagree on whether it is numeric", typ)
		}
	}
}

func TestCheckDesired(t *testing.T) {
	model := &v1alpha1.DeviceModelSpec{Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
		{Name: "temperature", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadOnly},
		{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite, Minimum: new("5"), Maximum: new("30")},
		{Name: "defaulted", Type: v1alpha1.PropertyTypeInt}, // accessMode unset: ReadOnly
	}}
	tests := []struct {
		name  string
		props []v1alpha1.DeviceProperty
		want  map[string]string // property -> reason
	}{
		{"a valid desired value on a ReadWrite property passes", []v1alpha1.DeviceProperty{{Name: "setpoint", Desired: new("21")}}, map[string]string{}},
		{"a property listed without a desired value is not checked", []v1alpha1.DeviceProperty{{Name: "temperature"}}, map[string]string{}},
		{"a desired value on a ReadOnly property is refused", []v1alpha1.DeviceProperty{{Name: "temperature", Desired: new("20")}},
			map[string]string{"temperature": v1alpha1.ReasonPropertyReadOnly}},
		{"a property with no access mode is ReadOnly", []v1alpha1.DeviceProperty{{Name: "defaulted", Desired: new("1")}},
			map[string]string{"defaulted": v1alpha1.ReasonPropertyReadOnly}},
		{"a property the model lacks is unknown", []v1alpha1.DeviceProperty{{Name: "humidity"}},
			map[string]string{"humidity": v1alpha1.ReasonUnknownProperty}},
		{"each bad property is reported and a good one is not", []v1alpha1.DeviceProperty{
			{Name: "setpoint", Desired: new("45")}, {Name: "humidity", Desired: new("1")}},
			map[string]string{"setpoint": v1alpha1.ReasonValueOutOfRange, "humidity": v1alpha1.ReasonUnknownProperty}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for _, p := range CheckDesired(model, tt.props) {
				got[p.Property] = p.Reason
			}
			if len(got) != len(tt.want) {
				t.Fatalf("CheckDesired = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("CheckDesired = %v, want %v", got, tt.want)
				}
			}
		})
	}
}
