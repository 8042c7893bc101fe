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

// Package property checks property values against a DeviceModel: the type, the range and the
// access mode. The cloud uses it for desired values in Device.spec and the edge for the values a
// mapper reports, so both sides agree on what a valid value is.
//
// Values are strings everywhere (spec, status, MQTT payloads); this package is where they meet
// their types. It has no state and touches nothing.
package property

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// Problem says why a value does not fit a property. Reason is one of the v1alpha1 condition
// reasons, so a controller can put it in a condition unchanged.
type Problem struct {
	// Property is the name of the property concerned.
	Property string
	// Reason is a CamelCase word, for example v1alpha1.ReasonValueOutOfRange.
	Reason string
	// Message says what is wrong, for people.
	Message string
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string { return fmt.Sprintf("property %q: %s", p.Property, p.Message) }

// CheckValue checks that value parses as the property's type and lies within its minimum and
// maximum. It returns nil or a *Problem.
func CheckValue(p *v1alpha1.ModelProperty, value string) *Problem {
	problem := func(reason, format string, args ...any) *Problem {
		return &Problem{Property: p.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	switch p.Type {
	case v1alpha1.PropertyTypeInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return problem(v1alpha1.ReasonInvalidValue, "value %q is not an int", value)
		}
		return checkIntRange(p, n, problem)
	case v1alpha1.PropertyTypeFloat, v1alpha1.PropertyTypeDouble:
		bits := 64
		if p.Type == v1alpha1.PropertyTypeFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(value, bits)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return problem(v1alpha1.ReasonInvalidValue, "value %q is not a finite %s", value, p.Type)
		}
		return checkFloatRange(p, f, problem)
	case v1alpha1.PropertyTypeBoolean:
		if value != "true" && value != "false" {
			return problem(v1alpha1.ReasonInvalidValue, "value %q is not a boolean (true or false)", value)
		}
	case v1alpha1.PropertyTypeString:
		if !utf8.ValidString(value) {
			return problem(v1alpha1.ReasonInvalidValue, "value is not valid UTF-8")
		}
	case v1alpha1.PropertyTypeBytes:
		if _, err := base64.StdEncoding.DecodeString(value); err != nil {
			return problem(v1alpha1.ReasonInvalidValue, "value is not standard base64: %v", err)
		}
	default:
		return problem(v1alpha1.ReasonInvalidValue, "the model gives the unknown type %q", p.Type)
	}
	return nil
}

type problemFunc func(reason, format string, args ...any) *Problem

func checkIntRange(p *v1alpha1.ModelProperty, n int64, problem problemFunc) *Problem {
	if p.Minimum != nil {
		if lo, err := strconv.ParseInt(*p.Minimum, 10, 64); err == nil && n < lo {
			return problem(v1alpha1.ReasonValueOutOfRange, "value %d is below the minimum %d", n, lo)
		}
	}
	if p.Maximum != nil {
		if hi, err := strconv.ParseInt(*p.Maximum, 10, 64); err == nil && n > hi {
			return problem(v1alpha1.ReasonValueOutOfRange, "value %d is above the maximum %d", n, hi)
		}
	}
	return nil
}

func checkFloatRange(p *v1alpha1.ModelProperty, f float64, problem problemFunc) *Problem {
	if p.Minimum != nil {
		if lo, err := strconv.ParseFloat(*p.Minimum, 64); err == nil && f < lo {
			return problem(v1alpha1.ReasonValueOutOfRange, "value %v is below the minimum %s", f, *p.Minimum)
		}
	}
	if p.Maximum != nil {
		if hi, err := strconv.ParseFloat(*p.Maximum, 64); err == nil && f > hi {
			return problem(v1alpha1.ReasonValueOutOfRange, "value %v is above the maximum %s", f, *p.Maximum)
		}
	}
	return nil
}

// Find returns the model's property of that name, or nil.
func Find(model *v1alpha1.DeviceModelSpec, name string) *v1alpha1.ModelProperty {
	for i := range model.Properties {
		if model.Properties[i].Name == name {
			return &model.Properties[i]
		}
	}
	return nil
}

// CheckDesired checks every desired value of a device against its model: the property must
// exist, be ReadWrite, and the value must fit it. It returns one Problem per rejected property,
// in spec order; properties without a desired value are not checked.
func CheckDesired(model *v1alpha1.DeviceModelSpec, props []v1alpha1.DeviceProperty) []Problem {
	var problems []Problem
	for i := range props {
		dp := &props[i]
		mp := Find(model, dp.Name)
		switch {
		case mp == nil:
			problems = append(problems, Problem{Property: dp.Name, Reason: v1alpha1.ReasonUnknownProperty,
				Message: "the model has no property of this name"})
		case dp.Desired == nil:
			continue
		case mp.AccessMode != v1alpha1.AccessModeReadWrite:
			problems = append(problems, Problem{Property: dp.Name, Reason: v1alpha1.ReasonPropertyReadOnly,
				Message: "the property is ReadOnly in the model, so it cannot have a desired value"})
		default:
			if p := CheckValue(mp, *dp.Desired); p != nil {
				problems = append(problems, *p)
			}
		}
	}
	return problems
}

// Equal reports whether two values of the property are the same value: numbers compare by
// value ("21.5" equals "21.50" and "2.15e1"), everything else byte for byte. A mapper may format
// a number differently from the user who wrote the desired value; that is not a difference.
func Equal(p *v1alpha1.ModelProperty, a, b string) bool {
	if a == b {
		return true
	}
	if p == nil || !p.Type.IsNumeric() {
		return false
	}
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && x == y
}
