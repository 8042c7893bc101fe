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

package sim

import "time"

// The types of Event.
const (
	// EventAdded: the simulator started driving a device.
	EventAdded = "added"
	// EventRemoved: a driven device left the node.
	EventRemoved = "removed"
	// EventDelta: a delta reached a driven device; Detail lists its desired values.
	EventDelta = "delta"
	// EventResultError: the edge answered an update of a driven device with an error code.
	EventResultError = "result-error"
	// EventGarbage: a message the simulator could not read was dropped.
	EventGarbage = "garbage"
)

// maxEvents bounds the events kept: enough to see what happened in the last minutes of a test
// or a demo, small enough to serve in one response.
const maxEvents = 1000

// Event is something that happened to the simulator, as GET /events shows it.
type Event struct {
	// Seq numbers the events from 1, so that a reader can tell which ones it has seen.
	Seq uint64 `json:"seq"`
	// Time is when the simulator saw it.
	Time time.Time `json:"time"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Device is the device's id, namespace/name; empty for garbage on a node topic.
	Device string `json:"device,omitempty"`
	// Detail says more, as key=value pairs.
	Detail string `json:"detail,omitempty"`
}

// ring keeps the last maxEvents events. It is not safe for concurrent use; the simulator's
// lock guards it.
type ring struct {
	buf  []Event
	next int
	seq  uint64
	size int
}

func newRing(size int) *ring { return &ring{size: size} }

func (r *ring) add(e Event) {
	r.seq++
	e.Seq = r.seq
	if len(r.buf) < r.size {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % r.size
}

// all returns the events, oldest first.
func (r *ring) all() []Event {
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
