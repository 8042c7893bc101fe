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

// Package hub is CloudHub: the websocket server every edge agent connects to.
//
// It owns the sessions (one per node, identified by the client certificate), the send queue of
// each session, the resync handshake and keepalive. It does not know any object kind: what a node
// should hold comes from Projections that other packages plug in, and reports from the edge go to
// a ReportSink. It never writes to the API server from a connection goroutine: connection events
// go to a StatusSink and reports to a ReportSink, which apply them on their own schedule.
package hub
