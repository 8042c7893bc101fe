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

// Package twin is DeviceTwin: for every device on this node it keeps the desired values (from
// the Device objects the cloud sent) beside the values the device's mapper reported, tells the
// mapper the difference (the delta), checks the mapper's reports against the device's model and
// queues the accepted ones for the cloud. It also keeps the node's device membership and
// announces its changes.
//
// It speaks KubeEdge's device-twin MQTT protocol (protocol.go, docs/mqtt.md) through a small Bus
// interface, so that it does not depend on the MQTT client; it stores twins and device states
// in MetaManager (edge/meta), and every write that belongs together (a reported value and its
// outbox report) is in one transaction — with group commit (batch.go), a whole burst of them
// is, and nothing is answered before that transaction committed. It never talks to the cloud: EdgeHub drains the outbox, and
// tells DeviceTwin about stored devices through its Listener interface.
package twin
