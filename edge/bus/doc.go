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

// Package bus is edgecore's EventBus: the MQTT side of the node, where mappers report device
// state and receive desired values on KubeEdge's $hw/events/... topics.
//
// It owns the one MQTT client edgecore uses (paho, persistent session, automatic reconnects,
// subscriptions remembered and restored) and, in internal mode, the broker embedded in edgecore
// (mochi-mqtt), listening on loopback. It knows topics and bytes only: what a payload means is
// DeviceTwin's business (edge/twin), and nothing here touches the local store or the cloud link.
package bus
