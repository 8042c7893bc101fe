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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DeviceModelSpec describes a kind of device: the protocol its mapper speaks and the properties
// every device of the model has.
type DeviceModelSpec struct {
	// protocol names the mapper kind that drives devices of this model (for example "modbus",
	// "opcua" or "simulator"). Devices may override it in their own spec.protocol.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$`
	Protocol string `json:"protocol"`

	// properties are the values a device of this model reports and, for ReadWrite ones, accepts.
	// Names are unique.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	Properties []ModelProperty `json:"properties"`
}

// ModelProperty is one property of a device model.
// +kubebuilder:validation:XValidation:rule="(!has(self.minimum) && !has(self.maximum)) || self.type in ['int', 'float', 'double']",message="minimum and maximum apply only to int, float and double properties"
// +kubebuilder:validation:XValidation:rule="self.type != 'int' || ((!has(self.minimum) || self.minimum.matches('^-?[0-9]+$')) && (!has(self.maximum) || self.maximum.matches('^-?[0-9]+$')))",message="minimum and maximum of an int property must be integers"
// +kubebuilder:validation:XValidation:rule="!has(self.minimum) || !has(self.maximum) || !self.minimum.matches('^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$') || !self.maximum.matches('^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$') || double(self.minimum) <= double(self.maximum)",message="minimum must not be greater than maximum"
type ModelProperty struct {
	// name identifies the property within the model; devices refer to it by this name and the
	// MQTT twin messages use it as the key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Name string `json:"name"`

	// type is the value type: int, float, double, string, boolean or bytes (base64).
	// +required
	Type PropertyType `json:"type"`

	// accessMode says whether a desired value may be set (ReadWrite) or the property is only
	// reported (ReadOnly). Defaults to ReadOnly, the safe choice for an actuator.
	// +optional
	// +kubebuilder:default=ReadOnly
	AccessMode AccessMode `json:"accessMode,omitempty"`

	// unit is the unit of measure shown to people, for example "celsius" or "%".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Unit string `json:"unit,omitempty"`

	// minimum is the smallest valid value of a numeric property, as a decimal number.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
	Minimum *string `json:"minimum,omitempty"`

	// maximum is the largest valid value of a numeric property, as a decimal number.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
	Maximum *string `json:"maximum,omitempty"`

	// description says what the property means, for people.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// DeviceModelStatus is what cloudcore observed about a model.
type DeviceModelStatus struct {
	// observedGeneration is the metadata.generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// propertyCount is the number of properties the model declares, shown by kubectl.
	// +optional
	PropertyCount int32 `json:"propertyCount,omitempty"`

	// devices is the number of Devices in the namespace whose spec.modelRef names this model.
	// +optional
	Devices int32 `json:"devices,omitempty"`

	// conditions describe the model's state; Ready is the summary.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=dm,categories=edgetwin
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.protocol`
// +kubebuilder:printcolumn:name="Properties",type=integer,JSONPath=`.status.propertyCount`
// +kubebuilder:printcolumn:name="Devices",type=integer,JSONPath=`.status.devices`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DeviceModel describes a kind of device: its protocol and its properties with their types,
// access modes and ranges. Devices refer to a model in their own namespace.
type DeviceModel struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec describes the model.
	// +required
	Spec DeviceModelSpec `json:"spec"`

	// status is what cloudcore observed about the model.
	// +optional
	Status DeviceModelStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DeviceModelList is a list of DeviceModels.
type DeviceModelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DeviceModel `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DeviceModel{}, &DeviceModelList{})
		return nil
	})
}
