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
)

func TestCheckValue(t *testing.T) {
	intProp := Schema{Name: "count", Type: TypeInt, Minimum: new("-5"), Maximum: new("10")}
	floatProp := Schema{Name: "level", Type: TypeFloat}
	doubleProp := Schema{Name: "setpoint", Type: TypeDouble, Minimum: new("5"), Maximum: new("30.5")}
	boolProp := Schema{Name: "on", Type: TypeBoolean}
	strProp := Schema{Name: "mode", Type: TypeString}
	bytesProp := Schema{Name: "blob", Type: TypeBytes}

	tests := []struct {
		name   string
		prop   Schema
		value  string
		reason string // empty when the value is valid
	}{
		{"an int inside the range is valid", intProp, "7", ""},
		{"an int on the minimum is valid", intProp, "-5", ""},
		{"an int on the maximum is valid", intProp, "10", ""},
		{"an int below the minimum is out of range", intProp, "-6", ReasonValueOutOfRange},
		{"an int above the maximum is out of range", intProp, "11", ReasonValueOutOfRange},
		{"a decimal is not an int", intProp, "7.5", ReasonInvalidValue},
		{"an int that overflows 64 bits is invalid", intProp, "99999999999999999999", ReasonInvalidValue},
		{"an empty string is not an int", intProp, "", ReasonInvalidValue},
		{"a double inside the range is valid", doubleProp, "21.5", ""},
		{"a double in exponent form is valid", doubleProp, "2.15e1", ""},
		{"a double just above a decimal maximum is out of range", doubleProp, "30.51", ReasonValueOutOfRange},
		{"a double below the minimum is out of range", doubleProp, "4.99", ReasonValueOutOfRange},
		{"NaN is not a double", doubleProp, "NaN", ReasonInvalidValue},
		{"infinity is not a double", doubleProp, "+Inf", ReasonInvalidValue},
		{"text is not a double", doubleProp, "warm", ReasonInvalidValue},
		{"a float without a range accepts any finite number", floatProp, "-123.25", ""},
		{"a number beyond float32 is not a float", floatProp, "1e39", ReasonInvalidValue},
		{"true is a boolean", boolProp, "true", ""},
		{"false is a boolean", boolProp, "false", ""},
		{"1 is not a boolean", boolProp, "1", ReasonInvalidValue},
		{"TRUE is not a boolean", boolProp, "TRUE", ReasonInvalidValue},
		{"any UTF-8 text is a string", strProp, "héat", ""},
		{"invalid UTF-8 is not a string", strProp, "\xff\xfe", ReasonInvalidValue},
		{"standard base64 is bytes", bytesProp, "aGVsbG8=", ""},
		{"broken base64 is not bytes", bytesProp, "aGVsbG8", ReasonInvalidValue},
		{"an unknown type rejects every value", Schema{Name: "x", Type: "complex"}, "1", ReasonInvalidValue},
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

// FuzzCheckValue feeds arbitrary values (as a mapper could report them) to every type: the check
// must never panic, and a value it accepts must be accepted again (the check is a pure function).
func FuzzCheckValue(f *testing.F) {
	for _, seed := range []string{"", "0", "-1", "21.5", "1e308", "NaN", "true", "aGk=", "\xff", "9223372036854775808"} {
		f.Add(seed)
	}
	types := []string{TypeInt, TypeFloat, TypeDouble,
		TypeString, TypeBoolean, TypeBytes}
	f.Fuzz(func(t *testing.T, value string) {
		for _, typ := range types {
			p := Schema{Name: "p", Type: typ, Minimum: new("-10"), Maximum: new("10")}
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
	double := &Schema{Name: "setpoint", Type: TypeDouble}
	str := &Schema{Name: "mode", Type: TypeString}
	tests := []struct {
		name string
		prop *Schema
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
