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

package property

import (
	"testing"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

func TestCheckValue(t *testing.T) {
	intProp := v1alpha1.ModelProperty{Name: "count", Type: v1alpha1.PropertyTypeInt, Minimum: new("-5"), Maximum: new("10")}
	floatProp := v1alpha1.ModelProperty{Name: "level", Type: v1alpha1.PropertyTypeFloat}
	doubleProp := v1alpha1.ModelProperty{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, Minimum: new("5"), Maximum: new("30.5")}
	boolProp := v1alpha1.ModelProperty{Name: "on", Type: v1alpha1.PropertyTypeBoolean}
	strProp := v1alpha1.ModelProperty{Name: "mode", Type: v1alpha1.PropertyTypeString}
	bytesProp := v1alpha1.ModelProperty{Name: "blob", Type: v1alpha1.PropertyTypeBytes}

	tests := []struct {
		name   string
		prop   v1alpha1.ModelProperty
		value  string
		reason string // empty when the value is valid
	}{
		{"an int inside the range is valid", intProp, "7", ""},
		{"an int on the minimum is valid", intProp, "-5", ""},
		{"an int on the maximum is valid", intProp, "10", ""},
		{"an int below the minimum is out of range", intProp, "-6", v1alpha1.ReasonValueOutOfRange},
		{"an int above the maximum is out of range", intProp, "11", v1alpha1.ReasonValueOutOfRange},
		{"a decimal is not an int", intProp, "7.5", v1alpha1.ReasonInvalidValue},
		{"an int that overflows 64 bits is invalid", intProp, "99999999999999999999", v1alpha1.ReasonInvalidValue},
		{"an empty string is not an int", intProp, "", v1alpha1.ReasonInvalidValue},
		{"a double inside the range is valid", doubleProp, "21.5", ""},
		{"a double in exponent form is valid", doubleProp, "2.15e1", ""},
		{"a double just above a decimal maximum is out of range", doubleProp, "30.51", v1alpha1.ReasonValueOutOfRange},
		{"a double below the minimum is out of range", doubleProp, "4.99", v1alpha1.ReasonValueOutOfRange},
		{"NaN is not a double", doubleProp, "NaN", v1alpha1.ReasonInvalidValue},
		{"infinity is not a double", doubleProp, "+Inf", v1alpha1.ReasonInvalidValue},
		{"text is not a double", doubleProp, "warm", v1alpha1.ReasonInvalidValue},
		{"a float without a range accepts any finite number", floatProp, "-123.25", ""},
		{"a number beyond float32 is not a float", floatProp, "1e39", v1alpha1.ReasonInvalidValue},
		{"true is a boolean", boolProp, "true", ""},
		{"false is a boolean", boolProp, "false", ""},
		{"1 is not a boolean", boolProp, "1", v1alpha1.ReasonInvalidValue},
		{"TRUE is not a boolean", boolProp, "TRUE", v1alpha1.ReasonInvalidValue},
		{"any UTF-8 text is a string", strProp, "héat", ""},
		{"invalid UTF-8 is not a string", strProp, "\xff\xfe", v1alpha1.ReasonInvalidValue},
		{"standard base64 is bytes", bytesProp, "aGVsbG8=", ""},
		{"broken base64 is not bytes", bytesProp, "aGVsbG8", v1alpha1.ReasonInvalidValue},
		{"an unknown type rejects every value", v1alpha1.ModelProperty{Name: "x", Type: "complex"}, "1", v1alpha1.ReasonInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckValue(&tt.prop, tt.value)
			switch {
			case tt.reason == "" && got != nil:
				t.Fatalf("CheckValue(%q) = %v, want valid", tt.value, got)
			case tt.reason != "" && got == nil:
				t.Fatalf("CheckValue(%q) = valid, want %s", tt.value, tt.reason)
			case got != nil && (got.Reason != tt.reason || got.Property != tt.prop.Name):
				t.Fatalf("CheckValue(%q) = %s on %q, want %s on %q", tt.value, got.Reason, got.Property, tt.reason, tt.prop.Name)
			}
		})
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

// FuzzCheckValue feeds arbitrary values (as a mapper could report them) to every type: the check
// must never panic, and a value it accepts must be accepted again (the check is a pure function).
func FuzzCheckValue(f *testing.F) {
	for _, seed := range []string{"", "0", "-1", "21.5", "1e308", "NaN", "true", "aGk=", "\xff", "9223372036854775808"} {
		f.Add(seed)
	}
	types := []v1alpha1.PropertyType{v1alpha1.PropertyTypeInt, v1alpha1.PropertyTypeFloat, v1alpha1.PropertyTypeDouble,
		v1alpha1.PropertyTypeString, v1alpha1.PropertyTypeBoolean, v1alpha1.PropertyTypeBytes}
	f.Fuzz(func(t *testing.T, value string) {
		for _, typ := range types {
			p := v1alpha1.ModelProperty{Name: "p", Type: typ, Minimum: new("-10"), Maximum: new("10")}
			first := CheckValue(&p, value)
			second := CheckValue(&p, value)
			if (first == nil) != (second == nil) {
				t.Fatalf("CheckValue(%q) as %s is not deterministic", value, typ)
			}
			if first != nil && (first.Reason == "" || first.Message == "") {
				t.Fatalf("CheckValue(%q) as %s gave a problem without reason or message", value, typ)
			}
		}
	})
}

func TestEqual(t *testing.T) {
	double := &v1alpha1.ModelProperty{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble}
	str := &v1alpha1.ModelProperty{Name: "mode", Type: v1alpha1.PropertyTypeString}
	tests := []struct {
		name string
		prop *v1alpha1.ModelProperty
		a, b string
		want bool
	}{
		{"numbers written differently are equal", double, "21.5", "2.150e1", true},
		{"different numbers are not equal", double, "21.5", "21.6", false},
		{"a number and text are not equal", double, "21.5", "warm", false},
		{"strings compare byte for byte", str, "heat", "Heat", false},
		{"identical strings are equal", str, "heat", "heat", true},
		{"without a model, numbers compare as text", nil, "1.0", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.prop, tt.a, tt.b); got != tt.want {
				t.Fatalf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
