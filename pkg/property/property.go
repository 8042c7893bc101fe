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

// Package property checks property values against a property's schema: its type and range. The
// cloud uses it for desired values in Device.spec (through cloud/devicemodel, which adds the
// access mode and the API types) and the edge for the values a mapper reports, so both sides
// agree on what a valid value is.
//
// Values are strings everywhere (spec, status, MQTT payloads); this package is where they meet
// their types. It has no state and touches nothing, and it imports no Kubernetes package: the
// edge links it, and a device-only edgecore (build tag noedged) links no Kubernetes code at all.
package property

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The value types a property may have: v1alpha1.PropertyType's values (cloud/devicemodel's
// tests hold the two equal).
const (
	TypeInt     = "int"
	TypeFloat   = "float"
	TypeDouble  = "double"
	TypeString  = "string"
	TypeBoolean = "boolean"
	TypeBytes   = "bytes"
)

// The reasons a Problem gives: v1alpha1's condition reasons of the same names (cloud/devicemodel's
// tests hold the two equal), so a controller can put them in a condition unchanged.
const (
	ReasonUnknownProperty  = "UnknownProperty"
	ReasonPropertyReadOnly = "PropertyReadOnly"
	ReasonInvalidValue     = "InvalidValue"
	ReasonValueOutOfRange  = "ValueOutOfRange"
)

// Schema is what a value is checked against: the property's name, type and range, as a
// DeviceModel declares them and the wire carries them to the edge.
type Schema struct {
	Name string
	// Type is one of the Type constants.
	Type string
	// Minimum and Maximum bound a numeric property, as decimal numbers; nil is unbounded.
	Minimum, Maximum *string
}

// IsNumeric reports whether values of the type are numbers, for which minimum and maximum apply.
func IsNumeric(typ string) bool { return typ == TypeInt || typ == TypeFloat || typ == TypeDouble }

// Problem says why a value does not fit a property.
type Problem struct {
	// Property is the name of the property concerned.
	Property string
	// Reason is one of the Reason constants, for example ReasonValueOutOfRange.
	Reason string
	// Message says what is wrong, for people.
	Message string
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string { return fmt.Sprintf("property %q: %s", p.Property, p.Message) }

// CheckValue checks that value parses as the property's type and lies within its minimum and
// maximum. It returns nil or a *Problem.
func CheckValue(p *Schema, value string) *Problem {
	problem := func(reason, format string, args ...any) *Problem {
		return &Problem{Property: p.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	switch p.Type {
	case TypeInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return problem(ReasonInvalidValue, "value %q is not an int", value)
		}
		return checkIntRange(p, n, problem)
	case TypeFloat, TypeDouble:
		bits := 64
		if p.Type == TypeFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(value, bits)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return problem(ReasonInvalidValue, "value %q is not a finite %s", value, p.Type)
		}
		return checkFloatRange(p, f, problem)
	case TypeBoolean:
		if value != "true" && value != "false" {
			return problem(ReasonInvalidValue, "value %q is not a boolean (true or false)", value)
		}
	case TypeString:
		if !utf8.ValidString(value) {
			return problem(ReasonInvalidValue, "value is not valid UTF-8")
		}
	case TypeBytes:
		if _, err := base64.StdEncoding.DecodeString(value); err != nil {
			return problem(ReasonInvalidValue, "value is not standard base64: %v", err)
		}
	default:
		return problem(ReasonInvalidValue, "the model gives the unknown type %q", p.Type)
	}
	return nil
}

type problemFunc func(reason, format string, args ...any) *Problem

func checkIntRange(p *Schema, n int64, problem problemFunc) *Problem {
	if p.Minimum != nil {
		if lo, err := strconv.ParseInt(*p.Minimum, 10, 64); err == nil && n < lo {
			return problem(ReasonValueOutOfRange, "value %d is below the minimum %d", n, lo)
		}
	}
	if p.Maximum != nil {
		if hi, err := strconv.ParseInt(*p.Maximum, 10, 64); err == nil && n > hi {
			return problem(ReasonValueOutOfRange, "value %d is above the maximum %d", n, hi)
		}
	}
	return nil
}

func checkFloatRange(p *Schema, f float64, problem problemFunc) *Problem {
	if p.Minimum != nil {
		if lo, err := strconv.ParseFloat(*p.Minimum, 64); err == nil && f < lo {
			return problem(ReasonValueOutOfRange, "value %v is below the minimum %s", f, *p.Minimum)
		}
	}
	if p.Maximum != nil {
		if hi, err := strconv.ParseFloat(*p.Maximum, 64); err == nil && f > hi {
			return problem(ReasonValueOutOfRange, "value %v is above the maximum %s", f, *p.Maximum)
		}
	}
	return nil
}

// Equal reports whether two values of the property are the same value: numbers compare by
// value ("21.5" equals "21.50" and "2.15e1"), everything else byte for byte. A mapper may format
// a number differently from the user who wrote the desired value; that is not a difference.
func Equal(p *Schema, a, b string) bool {
	if a == b {
		return true
	}
	if p == nil || !IsNumeric(p.Type) {
		return false
	}
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && x == y
}
