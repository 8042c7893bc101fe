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

// Package devicemodel checks a Device's desired values against its DeviceModel, in the API's
// types: whether each property exists, is ReadWrite, and whether the value fits it (by
// pkg/property's rules, which the edge applies to the values a mapper reports).
package devicemodel

import (
	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/property"
)

// Schema is what pkg/property checks a value of the model's property against.
func Schema(mp *v1alpha1.ModelProperty) *property.Schema {
	if mp == nil {
		return nil
	}
	return &property.Schema{Name: mp.Name, Type: string(mp.Type), Minimum: mp.Minimum, Maximum: mp.Maximum}
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
func CheckDesired(model *v1alpha1.DeviceModelSpec, props []v1alpha1.DeviceProperty) []property.Problem {
	var problems []property.Problem
	for i := range props {
		dp := &props[i]
		mp := Find(model, dp.Name)
		switch {
		case mp == nil:
			problems = append(problems, property.Problem{Property: dp.Name, Reason: v1alpha1.ReasonUnknownProperty,
				Message: "the model has no property of this name"})
		case dp.Desired == nil:
			continue
		case mp.AccessMode != v1alpha1.AccessModeReadWrite:
			problems = append(problems, property.Problem{Property: dp.Name, Reason: v1alpha1.ReasonPropertyReadOnly,
				Message: "the property is ReadOnly in the model, so it cannot have a desired value"})
		default:
			if p := property.CheckValue(Schema(mp), *dp.Desired); p != nil {
				problems = append(problems, *p)
			}
		}
	}
	return problems
}
