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
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// enqueue adds a report for device name, property key, to the store's outbox.
func enqueue(t *testing.T, s *meta.Store, name, key, body string) uint64 {
	t.Helper()
	seq, err := s.Enqueue("DeviceTwin", "ns", name, key, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// recvReports waits for the edge's next message, which must be a Report, and returns the
// sequences it carries.
func recvReports(t *testing.T, p *peer) []uint64 {
	t.Helper()
	m := p.recv()
	if m.Type != wire.TypeReport {
		t.Fatalf("the edge sent %s, want a report", m.Type)
	}
	seqs := make([]uint64, 0, len(m.Reports))
	for _, r := range m.Reports {
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func pendingCount(t *testing.T, s *meta.Store) func() bool {
	return func() bool {
		n, err := s.PendingCount()
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	}
}

func TestOutboxIsSentAndRemovedWhenAcked(t *testing.T) {
	cloud := newFakeCloud(t)
	store := openStore(t, "")
	enqueue(t, store, "d1", "temp", `"20"`)
	enqueue(t, store, "d1", "hum", `"40"`)
	enqueue(t, store, "d1", "temp", `"21"`) // coalesces the first away
	e := startEdge(t, cloud, store, nil)
	p := cloud.accept(t)
	p.welcome(0)

	if got, want := recvReports(t, p), []uint64{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("the edge reported sequences %v, want %v", got, want)
	}
	p.send(&wire.Message{Type: wire.TypeAck, Seq: 3})
	eventually(t, "the acked reports left the outbox", pendingCount(t, store))

	// A report enqueued while connected goes out on Notify.
	seq := enqueue(t, store, "d2", "temp", `"5"`)
	e.hub.Notify()
	if got, want := recvReports(t, p), []uint64{seq}; !slices.Equal(got, want) {
		t.Fatalf("after Notify the edge reported %v, want %v", got, want)
	}
	p.send(&wire.Message{Type: wire.TypeAck, Seq: seq})
	eventually(t, "the new report left the outbox", pendingCount(t, store))
	if acked, err := store.AckedSeq(); err != nil || acked != seq {
		t.Errorf("AckedSeq() = %d, %v; want %d", acked, err, seq)
	}
}

func TestReportsAreSentInBoundedBatches(t *testing.T) {
	tests := []struct {
		name       string
		reports    int
		batchSize  int
		batchBytes int
		want       []int
	}{
		{name: "reports beyond the batch size go in further messages", reports: 25, batchSize: 10, want: []int{10, 10, 5}},
		{name: "reports beyond the batch bytes go in further messages", reports: 5, batchBytes: 25, want: []int{2, 2, 1}},
		{name: "a report larger than the batch bytes goes alone", reports: 2, batchBytes: 5, want: []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cloud := newFakeCloud(t)
			store := openStore(t, "")
			for i := range tt.reports {
				enqueue(t, store, fmt.Sprintf("d%d", i), "temp", `"0123456789"`) // 12 bytes
			}
			startEdge(t, cloud, store, func(c *Config) { c.BatchSize, c.BatchBytes = tt.batchSize, tt.batchBytes })
			p := cloud.accept(t)
			p.welcome(0)
			var sizes []int
			var all []uint64
			for len(all) < tt.reports {
				seqs := recvReports(t, p)
				sizes = append(sizes, len(seqs))
				all = append(all, seqs...)
			}
			if !slices.Equal(sizes, tt.want) {
				t.Errorf("batches of %v, want %v", sizes, tt.want)
			}
			if !slices.IsSorted(all) || len(all) != tt.reports {
				t.Errorf("sequences %v are not every report in order", all)
			}
		})
	}
}

func TestOutboxSurvivesARestartAndIsResentAfterAReconnect(t *testing.T) {
	cloud := newFakeCloud(t)
	path := filepath.Join(t.TempDir(), "edge.db")
	before := openStore(t, path)
	first := enqueue(t, before, "d1", "temp", `"1"`)
	second := enqueue(t, before, "d2", "temp", `"2"`)
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}

	// edgecore restarted: a new store on the same file, a new hub.
	store := openStore(t, path)
	e := startEdge(t, cloud, store, nil)
	p := cloud.accept(t)
	p.welcome(0)
	if got, want := recvReports(t, p), []uint64{first, second}; !slices.Equal(got, want) {
		t.Fatalf("after the restart the edge reported %v, want %v", got, want)
	}
	// The cloud applied the first report but the connection broke before its ack went out.
	p.close()
	e.redialAfter(t, testBackoff.Initial)

	p = cloud.accept(t)
	p.welcome(first)
	if got, want := recvReports(t, p), []uint64{second}; !slices.Equal(got, want) {
		t.Fatalf("after the reconnect the edge reported %v, want only %v, which the welcome did not ack", got, want)
	}
	p.send(&wire.Message{Type: wire.TypeAck, Seq: second})
	eventually(t, "the outbox is empty", pendingCount(t, store))
}

func TestReportsNotAckedAreResentAfterAReconnect(t *testing.T) {
	cloud := newFakeCloud(t)
	e := startEdge(t, cloud, nil, nil)
	p := cloud.accept(t)
	p.welcome(0)
	seq := enqueue(t, e.store, "d1", "temp", `"1"`)
	e.hub.Notify()
	if got := recvReports(t, p); !slices.Equal(got, []uint64{seq}) {
		t.Fatalf("the edge reported %v, want [%d]", got, seq)
	}
	p.close()
	e.redialAfter(t, testBackoff.Initial)
	p = cloud.accept(t)
	p.welcome(0)
	if got := recvReports(t, p); !slices.Equal(got, []uint64{seq}) {
		t.Fatalf("after the reconnect the edge reported %v, want [%d] again", got, seq)
	}
}
