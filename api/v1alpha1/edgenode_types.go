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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// EdgeNodeSpec is what the cluster wants of an edge node. Settings local to the edge machine
// (the MQTT broker address, data paths) live in edgecore's own config file instead, so that the
// node keeps working from them when the cloud is unreachable.
type EdgeNodeSpec struct {
	// labels are put on the node's workloads' Node object, for scheduling.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Labels map[string]string `json:"labels,omitempty"`

	// taints keep workloads that do not tolerate them off the node.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +listMapKey=effect
	// +kubebuilder:validation:MaxItems=32
	Taints []corev1.Taint `json:"taints,omitempty"`
}

// EdgeNodeStatus is what cloudcore knows of the node's edge agent.
type EdgeNodeStatus struct {
	// conditions are Connected (the agent holds a session) and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastHeartbeatTime is when cloudcore last heard from the agent. It is updated on change or
	// at a slow interval, not on every keepalive.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`

	// nodeInfo describes the agent and the machine it runs on, as the agent reported them.
	// +optional
	NodeInfo EdgeNodeInfo `json:"nodeInfo,omitzero"`

	// addresses are the machine's addresses as the agent reported them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Addresses []corev1.NodeAddress `json:"addresses,omitempty"`

	// devices is the number of Devices whose spec.nodeName names this node.
	// +optional
	Devices int32 `json:"devices,omitempty"`

	// observedGeneration is the metadata.generation the conditions were computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// EdgeNodeInfo describes an edge agent and its machine.
type EdgeNodeInfo struct {
	// agentVersion is the edgecore version, for example "v0.1.0".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AgentVersion string `json:"agentVersion,omitempty"`

	// protocolVersion is the cloud–edge protocol version the agent speaks.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ProtocolVersion string `json:"protocolVersion,omitempty"`

	// operatingSystem is the machine's OS as Go names it, for example "linux".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	OperatingSystem string `json:"operatingSystem,omitempty"`

	// architecture is the machine's CPU architecture as Go names it, for example "arm64".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Architecture string `json:"architecture,omitempty"`

	// kernelVersion is the running kernel's release.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	KernelVersion string `json:"kernelVersion,omitempty"`
}

// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=en,categories=edgetwin
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="metadata.name must be a DNS label (lower case letters, digits and '-', at most 63 characters): it names the node's certificate and MQTT topics"
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Devices",type=integer,JSONPath=`.status.devices`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.nodeInfo.agentVersion`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// EdgeNode is an edge machine whose edgecore agent connects to cloudcore. Devices name it in
// spec.nodeName; its status shows whether the agent is connected.
type EdgeNode struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is what the cluster wants of the node.
	// +optional
	Spec EdgeNodeSpec `json:"spec,omitzero"`

	// status is what cloudcore knows of the node's agent.
	// +optional
	Status EdgeNodeStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// EdgeNodeList is a list of EdgeNodes.
type EdgeNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []EdgeNode `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &EdgeNode{}, &EdgeNodeList{})
		return nil
	})
}
