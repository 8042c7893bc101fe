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

// Package hub is EdgeHub, the edge's websocket client to CloudHub. It owns the one connection
// from this node to the cloud: it dials with mutual TLS, opens every session with a Hello that
// lists what the edge's store holds, stores and acknowledges the objects the cloud sends, and
// streams the store's outbox of reports until the cloud acknowledges them. When the link
// breaks it redials with exponential backoff and jitter, and resends whatever is still pending.
//
// Messages from the cloud are committed in groups: a reader goroutine reads ahead while the
// session commits, and everything read meanwhile is stored in one transaction (one fsync), then
// handed to the Listener and acknowledged. Nothing is acknowledged before the commit holding it.
//
// It does not interpret objects or reports: MetaManager (edge/meta) keeps them, and other
// components learn of stored objects through a Listener and add reports through the store's
// outbox, then call Notify.
package hub
