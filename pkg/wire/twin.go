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

package wire

// The report kinds DeviceTwin puts in the outbox (Report.Kind), with the bodies below. The cloud's
// report appliers decode Report.Body by kind.
const (
	// ReportKindDeviceTwin is one reported property value of a device: body TwinReport, one
	// pending report per property (the edge coalesces latest-wins on the property name).
	ReportKindDeviceTwin = "DeviceTwin"
	// ReportKindDeviceState is the state a device's mapper reported: body StateReport, one pending
	// report per device.
	ReportKindDeviceState = "DeviceState"
)

// TwinReport is the body of a ReportKindDeviceTwin report: the value a mapper reported for one
// property of the device named by the Report, accepted by the edge after checking it against the
// device's model.
//
// Version and Desired say what the value was compared with, so that the cloud can tell an
// acknowledgement of the current desired value from one of an older value: if Version is the
// device's current content version, Synced answers "is the current desired value reported back";
// if not, the cloud compares Desired with its current desired value (the desired value may not
// have changed between the two versions).
type TwinReport struct {
	// Property is the property's name, as in the model.
	Property string `json:"property"`
	// Value is the reported value, as the mapper wrote it (values are strings everywhere).
	Value string `json:"value"`
	// Timestamp is when the edge accepted the value, in milliseconds since the Unix epoch, on the
	// edge's clock. Appliers keep the report with the newest timestamp per property.
	Timestamp int64 `json:"timestamp"`
	// Version is the content version of the device the edge held when it accepted the value.
	Version string `json:"version,omitempty"`
	// Desired is the desired value the edge held for the property then; nil when none was set.
	Desired *string `json:"desired,omitempty"`
	// Synced is true when Value equals Desired (numbers compared by value): the mapper has
	// acknowledged the desired value of Version.
	Synced bool `json:"synced,omitempty"`
}

// The device states a mapper may report, as KubeEdge's mappers spell them.
const (
	DeviceStateOnline    = "online"
	DeviceStateOffline   = "offline"
	DeviceStateOK        = "ok"
	DeviceStateUnknown   = "unknown"
	DeviceStateUnhealthy = "unhealthy"
)

// KnownDeviceState reports whether s is one of the device states a mapper may report.
func KnownDeviceState(s string) bool {
	switch s {
	case DeviceStateOnline, DeviceStateOffline, DeviceStateOK, DeviceStateUnknown, DeviceStateUnhealthy:
		return true
	}
	return false
}

// StateReport is the body of a ReportKindDeviceState report: the state a device's mapper
// reported. The cloud maps it onto Device.status.state: online and ok are Online, offline is
// Offline, unknown and unhealthy are Unknown.
type StateReport struct {
	// State is one of the DeviceState* words.
	State string `json:"state"`
	// Timestamp is when the edge accepted the state, in milliseconds since the Unix epoch, on the
	// edge's clock.
	Timestamp int64 `json:"timestamp"`
}
