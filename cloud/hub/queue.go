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

package hub

import (
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// sendQueue is a session's outgoing queue. Control messages (welcome, synced, report acks) keep
// their order; object messages are keyed by object, and a newer message for an object replaces
// an unsent older one in place, so the queue never holds a history of one object. It is not safe
// for concurrent use; the session's lock guards it.
type sendQueue struct {
	entries []*entry
	head    int
	byKey   map[string]*entry
	objects int // object entries not yet popped
}

type entry struct {
	msg *wire.Message
	key string // object key, empty for control messages
}

func newSendQueue() *sendQueue { return &sendQueue{byKey: map[string]*entry{}} }

// push appends a control message.
func (q *sendQueue) push(m *wire.Message) {
	q.entries = append(q.entries, &entry{msg: m})
}

// pushObject enqueues an upsert or delete, replacing a pending message for the same object.
// It reports whether the message replaced one (coalesced) rather than growing the queue.
func (q *sendQueue) pushObject(m *wire.Message) bool {
	key := m.Object.Key()
	if e, ok := q.byKey[key]; ok {
		e.msg = m
		return true
	}
	e := &entry{msg: m, key: key}
	q.entries = append(q.entries, e)
	q.byKey[key] = e
	q.objects++
	return false
}

// pending returns the message waiting for an object, if any.
func (q *sendQueue) pending(key string) (*wire.Message, bool) {
	e, ok := q.byKey[key]
	if !ok {
		return nil, false
	}
	return e.msg, true
}

// drop removes a pending object message; its slot is skipped when popped.
func (q *sendQueue) drop(key string) {
	if e, ok := q.byKey[key]; ok {
		e.msg = nil
		delete(q.byKey, key)
		q.objects--
	}
}

// pop returns the next message, or nil when the queue is empty.
func (q *sendQueue) pop() *wire.Message {
	for q.head < len(q.entries) {
		e := q.entries[q.head]
		q.entries[q.head] = nil
		q.head++
		if e.key != "" {
			if e.msg == nil { // dropped
				continue
			}
			delete(q.byKey, e.key)
			q.objects--
		}
		if q.head == len(q.entries) { // reuse the backing array once drained
			q.entries, q.head = q.entries[:0], 0
		}
		return e.msg
	}
	return nil
}

// len is the number of messages waiting.
func (q *sendQueue) len() int {
	n := 0
	for _, e := range q.entries[q.head:] {
		if e.key == "" || e.msg != nil {
			n++
		}
	}
	return n
}
