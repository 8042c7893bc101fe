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

// Package sim is edgetwin-sim's simulator: a mapper that speaks the device-twin MQTT protocol
// (docs/mqtt.md) for any number of simulated devices of one edge node.
//
// It learns its devices from the node's membership topics, applies every desired value it
// receives (in deltas, and the expected values of membership twins) and reports it back, so the
// cloud sees the device Synced. Between deltas each device lives a little: a thermostat's
// temperature drifts toward its setpoint, a counter counts (kinds.go). What it saw is kept for
// people and tests: one log line per membership change and per delta, a bounded ring of events,
// and a snapshot of every device.
//
// It is written as a mapper would be, against the protocol and not against edgecore's code: it
// does not import edge/..., so it also shows that the documented protocol is enough.
package sim
