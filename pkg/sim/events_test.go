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

import (
	"slices"
	"testing"
)

func TestTheEventRingKeepsTheNewestEventsOldestFirst(t *testing.T) {
	tests := []struct {
		name  string
		added int
		want  []uint64
	}{
		{"empty", 0, []uint64{}},
		{"not full", 2, []uint64{1, 2}},
		{"just full", 3, []uint64{1, 2, 3}},
		{"wrapped once", 5, []uint64{3, 4, 5}},
		{"wrapped more than once", 10, []uint64{8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(3)
			for range tt.added {
				r.add(Event{Type: EventDelta})
			}
			all := r.all()
			got := make([]uint64, 0, len(all))
			for _, e := range all {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("seqs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTheSimulatorKeepsAtMostMaxEvents(t *testing.T) {
	s := newTestSim(t)
	for range maxEvents + 10 {
		s.handle(nodeTopic(node, opMembershipUpdated), []byte("garbage"))
	}
	ev := s.Events()
	if len(ev) != maxEvents || ev[0].Seq != 11 || ev[len(ev)-1].Seq != maxEvents+10 {
		t.Errorf("kept %d events, %d to %d; want the last %d", len(ev), ev[0].Seq, ev[len(ev)-1].Seq, maxEvents)
	}
}
