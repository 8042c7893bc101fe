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

// Condition types. Every kind carries a summary Ready condition plus specific ones; each
// condition's ObservedGeneration says which spec it was computed from.
const (
	// ConditionReady is the summary: True when every other condition of the object is True.
	ConditionReady = "Ready"

	// ConditionModelResolved (Device) is True when spec.modelRef names an existing DeviceModel
	// and every desired value in spec.properties is valid for it.
	ConditionModelResolved = "ModelResolved"
	// ConditionNodeConnected (Device) is True when the EdgeNode in spec.nodeName exists and its
	// edge agent is connected to cloudcore.
	ConditionNodeConnected = "NodeConnected"
	// ConditionSynced (Device) is True when every desired value in spec has been reported back by
	// the device with the same value.
	ConditionSynced = "Synced"

	// ConditionConnected (EdgeNode) is True while the node's edge agent holds a session with
	// cloudcore.
	ConditionConnected = "Connected"

	// ConditionReachable (Device) is the device's state as its mapper last reported it through
	// the edge: True for online or ok, False for offline or unhealthy, Unknown for unknown or
	// before any report. It keeps the edge's word while the node is disconnected, so the state
	// comes back when the node does.
	ConditionReachable = "Reachable"

	// ConditionInUse (DeviceModel) is True while devices refer to the model. A model in use is
	// not deleted: its finalizer waits, and the message names the devices that still use it.
	ConditionInUse = "InUse"
)

// Condition reasons. They are CamelCase words a program can branch on; the message carries the
// details for people.
const (
	// ReasonModelFound: the DeviceModel exists and the desired values fit it.
	ReasonModelFound = "ModelFound"
	// ReasonModelNotFound: no DeviceModel of that name exists in the device's namespace.
	ReasonModelNotFound = "ModelNotFound"
	// ReasonUnknownProperty: a desired value names a property the model does not declare.
	ReasonUnknownProperty = "UnknownProperty"
	// ReasonPropertyReadOnly: a desired value is set on a ReadOnly property.
	ReasonPropertyReadOnly = "PropertyReadOnly"
	// ReasonInvalidValue: a desired value does not parse as the property's type.
	ReasonInvalidValue = "InvalidValue"
	// ReasonValueOutOfRange: a desired value lies outside the property's minimum or maximum.
	ReasonValueOutOfRange = "ValueOutOfRange"

	// ReasonNodeNotFound: no EdgeNode of the name in spec.nodeName exists.
	ReasonNodeNotFound = "NodeNotFound"
	// ReasonNodeConnected: the node's edge agent is connected.
	ReasonNodeConnected = "NodeConnected"
	// ReasonNodeDisconnected: the node exists but its edge agent is not connected.
	ReasonNodeDisconnected = "NodeDisconnected"

	// ReasonSynced: every desired value has been reported back.
	ReasonSynced = "Synced"
	// ReasonNothingDesired: the device has no desired values, so there is nothing to wait for.
	ReasonNothingDesired = "NothingDesired"
	// ReasonAwaitingReport: some desired values have not been reported back yet.
	ReasonAwaitingReport = "AwaitingReport"

	// ReasonNeverConnected: the edge agent has not connected since the EdgeNode was created.
	ReasonNeverConnected = "NeverConnected"
	// ReasonSessionOpen: the edge agent holds a session.
	ReasonSessionOpen = "SessionOpen"
	// ReasonSessionClosed: the edge agent's session ended and it has not come back.
	ReasonSessionClosed = "SessionClosed"
	// ReasonProtocolVersionRefused: the agent speaks a protocol version cloudcore does not accept.
	ReasonProtocolVersionRefused = "ProtocolVersionRefused"

	// ReasonNoStateReported: the device's mapper has not reported a state yet.
	ReasonNoStateReported = "NoStateReported"
	// ReasonStateReported: the mapper reported a state; the message quotes it.
	ReasonStateReported = "StateReported"

	// ReasonInUse: devices refer to the model; deleting it waits until none does.
	ReasonInUse = "DevicesReferToIt"
	// ReasonNotInUse: no device refers to the model.
	ReasonNotInUse = "NoDevicesReferToIt"

	// ReasonReady: every specific condition is True.
	ReasonReady = "Ready"
	// ReasonNotReady: at least one specific condition is not True; the message names them.
	ReasonNotReady = "NotReady"
)

// Finalizers cloudcore puts on its objects.
const (
	// FinalizerEdgeCleanup (Device) holds a deleted device until its edge node has removed it, for
	// a bounded time; an offline or deleted node does not hold it (it is removed on the node's
	// next resync).
	FinalizerEdgeCleanup = "edgetwin.dev/edge-cleanup"
	// FinalizerInUse (DeviceModel) holds a deleted model while devices still refer to it.
	FinalizerInUse = "edgetwin.dev/in-use"
)
