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

// Package meta is MetaManager, the edge's local store: every object the cloud sent to this node
// and the outbox of reports the cloud has not acknowledged yet, in one SQLite database (WAL mode)
// reached through gorm. It is what lets the edge keep working, and lose nothing, while the link
// to the cloud is down or edgecore restarts.
//
// The package owns the database file and its schema: other components read and write through
// Store, never through SQL of their own. Every logical write is one transaction, so a crash
// between two steps loses nothing and duplicates nothing. It also holds DeviceTwin's rows (the
// twin of every device property and each device's state) and lets DeviceTwin write them and an
// outbox report in one transaction (Update), so that an accepted report is either stored and
// queued, or neither. It speaks no network protocol (that is EdgeHub's) and does not interpret
// twins (that is DeviceTwin's): values and bodies are opaque here.
package meta
