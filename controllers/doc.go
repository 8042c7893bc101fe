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

// Package controllers holds cloudcore's reconcilers, one per kind: Device, DeviceModel and
// EdgeNode. They derive status (conditions, counts) from the observed world on every pass and
// carry forward what only the edge knows (reported values, edge timestamps, device state).
//
// They never talk to edge nodes themselves: CloudHub (cloud/hub) owns the sessions and the
// Connected condition of EdgeNodes; these reconcilers only read it.
package controllers
