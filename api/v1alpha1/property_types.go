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

package v1alpha1

// PropertyType is the value type of a device property. Values travel as strings (in Device.spec,
// in status and over MQTT) and are parsed by this type when they are checked.
// +kubebuilder:validation:Enum=int;float;double;string;boolean;bytes
type PropertyType string

// The property types a DeviceModel may declare; they are the ones KubeEdge's mappers use.
const (
	// PropertyTypeInt is a signed 64-bit integer in decimal.
	PropertyTypeInt PropertyType = "int"
	// PropertyTypeFloat is a 32-bit floating point number.
	PropertyTypeFloat PropertyType = "float"
	// PropertyTypeDouble is a 64-bit floating point number.
	PropertyTypeDouble PropertyType = "double"
	// PropertyTypeString is free text.
	PropertyTypeString PropertyType = "string"
	// PropertyTypeBoolean is "true" or "false".
	PropertyTypeBoolean PropertyType = "boolean"
	// PropertyTypeBytes is binary data in standard base64.
	PropertyTypeBytes PropertyType = "bytes"
)

// IsNumeric reports whether values of the type are numbers, for which minimum and maximum apply.
func (t PropertyType) IsNumeric() bool {
	return t == PropertyTypeInt || t == PropertyTypeFloat || t == PropertyTypeDouble
}

// AccessMode says whether a property can be set from the cloud or is only reported by the device.
// +kubebuilder:validation:Enum=ReadOnly;ReadWrite
type AccessMode string

const (
	// AccessModeReadOnly properties are reported by the device and cannot be given a desired value.
	AccessModeReadOnly AccessMode = "ReadOnly"
	// AccessModeReadWrite properties can be given a desired value in Device.spec.
	AccessModeReadWrite AccessMode = "ReadWrite"
)

// DeviceState is the connection state of a device as its edge node last saw it.
// +kubebuilder:validation:Enum=Online;Offline;Unknown
type DeviceState string

const (
	// DeviceStateOnline means the device's mapper reports it reachable.
	DeviceStateOnline DeviceState = "Online"
	// DeviceStateOffline means the mapper reports it unreachable, or its node is disconnected.
	DeviceStateOffline DeviceState = "Offline"
	// DeviceStateUnknown means no state has been reported yet.
	DeviceStateUnknown DeviceState = "Unknown"
)
