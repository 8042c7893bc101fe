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

// DeviceSpec is what the user wants of a device: which model it is, which edge node hosts it and
// the desired values of its writable properties.
type DeviceSpec struct {
	// modelRef names the DeviceModel, in the device's namespace, that describes this device.
	// +required
	ModelRef ModelReference `json:"modelRef"`

	// nodeName is the name of the EdgeNode whose edge agent drives the device. Changing it moves
	// the device: it is removed from the old node and sent to the new one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	NodeName string `json:"nodeName"`

	// protocol overrides the model's protocol for this device and carries the mapper's
	// device-specific settings (an address, a slave id, a serial port).
	// +optional
	Protocol *ProtocolConfig `json:"protocol,omitempty"`

	// properties hold the desired values and per-property settings of this device. Each name
	// must be a property of the model; names are unique.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Properties []DeviceProperty `json:"properties,omitempty"`
}

// ModelReference names a DeviceModel in the same namespace.
type ModelReference struct {
	// name is the DeviceModel's metadata.name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ProtocolConfig is the mapper protocol of one device and its settings.
type ProtocolConfig struct {
	// name is the mapper kind, overriding the model's spec.protocol when set.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// config is free-form settings handed to the mapper unchanged.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Config *runtime.RawExtension `json:"config,omitempty"`
}

// DeviceProperty is the desired value and settings of one property of a device.
// +kubebuilder:validation:XValidation:rule="!has(self.reportPeriod) || !self.reportPeriod.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') || duration(self.reportPeriod) >= duration('100ms')",message="reportPeriod must be at least 100ms"
type DeviceProperty struct {
	// name is the property's name in the device's model.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Name string `json:"name"`

	// desired is the value the device should take, written as a string in the property's type
	// ("21.5", "true", "on"). Only ReadWrite properties accept one. Unset means "no opinion".
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	Desired *string `json:"desired,omitempty"`

	// reportPeriod asks the mapper to report this property at this interval (for example "10s").
	// Unset leaves the mapper's default.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	ReportPeriod *metav1.Duration `json:"reportPeriod,omitempty"`
}

// DeviceStatus is what the edge last reported about the device, and what cloudcore derives
// from it. Reported values, edge timestamps and state come only from the edge and are replaced
// only by a newer report; conditions are recomputed on every pass.
type DeviceStatus struct {
	// state is the device's connection state: Online, Offline or Unknown.
	// +optional
	State DeviceState `json:"state,omitempty"`

	// lastSeen is when the edge last heard from the device, by the edge's clock.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// twins pair, per property, the desired value the edge acknowledged with the value the
	// device reported.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Twins []Twin `json:"twins,omitempty"`

	// observedGeneration is the metadata.generation the conditions were computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are ModelResolved, NodeConnected, Synced and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Twin is the twin state of one property: desired as acknowledged by the edge, and reported.
type Twin struct {
	// name is the property's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// desired is the desired value the edge has stored and handed to the mapper.
	// +optional
	Desired *TwinValue `json:"desired,omitempty"`

	// reported is the value the device last reported.
	// +optional
	Reported *TwinValue `json:"reported,omitempty"`
}

// TwinValue is a property value with the edge time at which it was observed.
type TwinValue struct {
	// value is the value as a string in the property's type.
	// +required
	// +kubebuilder:validation:MaxLength=16384
	Value string `json:"value"`

	// timestamp is when the edge observed the value, by the edge's clock, to the microsecond.
	// +optional
	Timestamp *metav1.MicroTime `json:"timestamp,omitempty"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=dev,categories=edgetwin
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:selectablefield:JSONPath=`.spec.modelRef.name`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.modelRef.name`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.lastSeen`,priority=1

// Device is one physical device attached to an edge node. Its spec holds the desired values of
// its properties; its status holds the twin: desired as acknowledged by the edge, and reported.
type Device struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is what the user wants of the device.
	// +required
	Spec DeviceSpec `json:"spec"`

	// status is the device's twin as the edge reported it.
	// +optional
	Status DeviceStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DeviceList is a list of Devices.
type DeviceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []Device `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &Device{}, &DeviceList{})
		return nil
	})
}
