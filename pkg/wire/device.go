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

import "encoding/json"

// Device is the body of a KindDevice upsert: a Device as its edge node needs it, with its
// model's properties merged in and every desired value that does not fit the model withheld.
// Its JSON is hashed for the content version, so it holds nothing that changes without the
// device's meaning changing (no resourceVersion, no status).
type Device struct {
	// UID is the Device object's UID, so the edge can tell a re-created device from the old one.
	UID string `json:"uid"`
	// Model is the DeviceModel's name.
	Model string `json:"model"`
	// Protocol is the mapper kind: the device's override, or the model's protocol.
	Protocol string `json:"protocol"`
	// ProtocolConfig is the device's free-form mapper settings, unchanged.
	ProtocolConfig json.RawMessage `json:"protocolConfig,omitempty"`
	// Properties are the model's properties with this device's settings, in model order.
	Properties []DeviceProperty `json:"properties"`
}

// DeviceProperty is one property of a device as the edge drives it.
type DeviceProperty struct {
	// Name, Type, AccessMode, Unit, Minimum and Maximum come from the model.
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	AccessMode string  `json:"accessMode"`
	Unit       string  `json:"unit,omitempty"`
	Minimum    *string `json:"minimum,omitempty"`
	Maximum    *string `json:"maximum,omitempty"`
	// Desired is the value the device should take; nil when none is set or the set one was
	// refused by the model check.
	Desired *string `json:"desired,omitempty"`
	// ReportPeriod is the device's requested report interval (a Go duration), if any.
	ReportPeriod string `json:"reportPeriod,omitempty"`
}
