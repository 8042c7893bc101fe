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
	"testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func upsert(name, version string) *wire.Message {
	return &wire.Message{ID: name + version, Type: wire.TypeUpsert,
		Object: &wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: name, Version: version}, Body: []byte("{}")}
}

func del(name string) *wire.Message {
	return &wire.Message{ID: "del-" + name, Type: wire.TypeDelete, Object: &wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: name}}
}

func drain(q *sendQueue) []string {
	var ids []string
	for m := q.pop(); m != nil; m = q.pop() {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestSendQueue(t *testing.T) {
	tests := []struct {
		name string
		fill func(q *sendQueue)
		want []string
	}{
		{"control messages keep their order", func(q *sendQueue) {
			q.push(&wire.Message{ID: "welcome"})
			q.push(&wire.Message{ID: "synced"})
		}, []string{"welcome", "synced"}},
		{"a newer version replaces an unsent older one in place", func(q *sendQueue) {
			q.push(&wire.Message{ID: "welcome"})
			q.pushObject(upsert("a", "1"))
			q.pushObject(upsert("b", "1"))
			q.push(&wire.Message{ID: "synced"})
			q.pushObject(upsert("a", "2"))
		}, []string{"welcome", "a2", "b1", "synced"}},
		{"a delete replaces a pending upsert", func(q *sendQueue) {
			q.pushObject(upsert("a", "1"))
			q.pushObject(del("a"))
		}, []string{"del-a"}},
		{"a dropped object is skipped", func(q *sendQueue) {
			q.pushObject(upsert("a", "1"))
			q.pushObject(upsert("b", "1"))
			q.drop("Device/ns/a")
		}, []string{"b1"}},
		{"an object popped and pushed again is sent again", func(q *sendQueue) {
			q.pushObject(upsert("a", "1"))
			_ = q.pop()
			q.pushObject(upsert("a", "2"))
		}, []string{"a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSendQueue()
			tt.fill(q)
			got := drain(q)
			if len(got) != len(tt.want) {
				t.Fatalf("sent %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("sent %v, want %v", got, tt.want)
				}
			}
			if q.len() != 0 || q.objects != 0 || len(q.byKey) != 0 {
				t.Fatalf("after draining: len %d, objects %d, keys %d; want all 0", q.len(), q.objects, len(q.byKey))
			}
		})
	}
}

func TestSendQueueCountsCoalescing(t *testing.T) {
	q := newSendQueue()
	if q.pushObject(upsert("a", "1")) {
		t.Fatal("the first message for an object reported coalescing")
	}
	if !q.pushObject(upsert("a", "2")) {
		t.Fatal("a second message for a pending object did not coalesce")
	}
	if q.len() != 1 || q.objects != 1 {
		t.Fatalf("len %d objects %d, want 1 and 1", q.len(), q.objects)
	}
	if m, ok := q.pending("Device/ns/a"); !ok || m.Object.Version != "2" {
		t.Fatalf("pending = %v %v, want version 2", m, ok)
	}
}
