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

package meta

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// enqueued is a report as a test enqueues it.
type enqueued struct {
	kind, ns, name, key, body string
}

// pendingReport is what a test expects to find pending.
type pendingReport struct {
	seq  uint64
	name string
	body string
}

func TestEnqueueCoalesces(t *testing.T) {
	tests := []struct {
		name    string
		reports []enqueued
		want    []pendingReport
	}{{
		name:    "reports for different keys are all kept in order",
		reports: []enqueued{{"Twin", "ns", "d", "temp", `1`}, {"Twin", "ns", "d", "hum", `2`}},
		want:    []pendingReport{{1, "d", `1`}, {2, "d", `2`}},
	}, {
		name:    "a newer report for the same key replaces the older one and takes a new sequence",
		reports: []enqueued{{"Twin", "ns", "d", "temp", `1`}, {"Twin", "ns", "d", "hum", `2`}, {"Twin", "ns", "d", "temp", `3`}},
		want:    []pendingReport{{2, "d", `2`}, {3, "d", `3`}},
	}, {
		name:    "the same key of another device does not coalesce",
		reports: []enqueued{{"Twin", "ns", "d1", "temp", `1`}, {"Twin", "ns", "d2", "temp", `2`}},
		want:    []pendingReport{{1, "d1", `1`}, {2, "d2", `2`}},
	}, {
		name:    "the same device in another namespace does not coalesce",
		reports: []enqueued{{"Twin", "ns1", "d", "temp", `1`}, {"Twin", "ns2", "d", "temp", `2`}},
		want:    []pendingReport{{1, "d", `1`}, {2, "d", `2`}},
	}, {
		name:    "another kind of report for the same key does not coalesce",
		reports: []enqueued{{"Twin", "ns", "d", "x", `1`}, {"State", "ns", "d", "x", `"online"`}},
		want:    []pendingReport{{1, "d", `1`}, {2, "d", `"online"`}},
	}, {
		name: "many updates of one key leave only the newest",
		reports: []enqueued{
			{"Twin", "ns", "d", "temp", `1`}, {"Twin", "ns", "d", "temp", `2`},
			{"Twin", "ns", "d", "temp", `3`}, {"Twin", "ns", "d", "temp", `4`},
		},
		want: []pendingReport{{4, "d", `4`}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			for i, r := range tt.reports {
				seq, err := s.Enqueue(r.kind, r.ns, r.name, r.key, []byte(r.body))
				if err != nil {
					t.Fatal(err)
				}
				if seq != uint64(i+1) {
					t.Errorf("report %d got sequence %d, want %d", i, seq, i+1)
				}
			}
			assertPending(t, s, tt.want)
		})
	}
}

func assertPending(t *testing.T, s *Store, want []pendingReport) {
	t.Helper()
	reports, err := s.Pending(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]pendingReport, 0, len(reports))
	for _, r := range reports {
		got = append(got, pendingReport{r.Seq, r.Name, string(r.Body)})
	}
	if want == nil {
		want = []pendingReport{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	n, err := s.PendingCount()
	if err != nil || n != len(want) {
		t.Errorf("PendingCount() = %d, %v; want %d", n, err, len(want))
	}
}

func TestEnqueueRefusesReportsThatCouldNeverBeSent(t *testing.T) {
	tests := []struct {
		name   string
		report enqueued
	}{
		{name: "a report without a kind is refused", report: enqueued{"", "ns", "d", "k", `1`}},
		{name: "a report without a name is refused", report: enqueued{"Twin", "ns", "", "k", `1`}},
		{name: "a body that is not JSON is refused", report: enqueued{"Twin", "ns", "d", "k", `{`}},
		{name: "an empty body is refused", report: enqueued{"Twin", "ns", "d", "k", ``}},
		{name: "a body over the size limit is refused", report: enqueued{"Twin", "ns", "d", "k", `"` + strings.Repeat("x", MaxReportSize) + `"`}},
	}
	s, _ := openStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.report
			if _, err := s.Enqueue(r.kind, r.ns, r.name, r.key, []byte(r.body)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Enqueue = %v, want ErrInvalid", err)
			}
		})
	}
	assertPending(t, s, nil)
}

func TestSequenceGrowsAcrossRestarts(t *testing.T) {
	s, path := openStore(t)
	var last uint64
	enqueue := func(key string) {
		t.Helper()
		seq, err := s.Enqueue("Twin", "ns", "d", key, []byte(`1`))
		if err != nil {
			t.Fatal(err)
		}
		if seq <= last {
			t.Fatalf("sequence %d after %d", seq, last)
		}
		last = seq
	}
	enqueue("a")
	enqueue("b")
	s = reopen(t, s, path)
	enqueue("a")
	// Once everything is acked the outbox is empty; the sequence must still not go back.
	if err := s.Ack(last); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	assertPending(t, s, nil)
	enqueue("c")
	if last != 4 {
		t.Errorf("last sequence = %d, want 4", last)
	}
}

func TestAckIsCumulative(t *testing.T) {
	tests := []struct {
		name      string
		acks      []uint64
		want      []pendingReport
		wantAcked uint64
	}{{
		name:      "an ack removes every report up to its sequence",
		acks:      []uint64{2},
		want:      []pendingReport{{3, "d3", `3`}},
		wantAcked: 2,
	}, {
		name:      "an older ack after a newer one changes nothing",
		acks:      []uint64{2, 1},
		want:      []pendingReport{{3, "d3", `3`}},
		wantAcked: 2,
	}, {
		name:      "an ack of zero changes nothing",
		acks:      []uint64{0},
		want:      []pendingReport{{1, "d1", `1`}, {2, "d2", `2`}, {3, "d3", `3`}},
		wantAcked: 0,
	}, {
		name:      "an ack of everything empties the outbox",
		acks:      []uint64{3},
		wantAcked: 3,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openStore(t)
			for i := 1; i <= 3; i++ {
				if _, err := s.Enqueue("Twin", "ns", fmt.Sprintf("d%d", i), "k", fmt.Appendf(nil, "%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range tt.acks {
				if err := s.Ack(a); err != nil {
					t.Fatal(err)
				}
			}
			s = reopen(t, s, path)
			assertPending(t, s, tt.want)
			if acked, err := s.AckedSeq(); err != nil || acked != tt.wantAcked {
				t.Errorf("AckedSeq() = %d, %v; want %d", acked, err, tt.wantAcked)
			}
		})
	}
}

func TestAckBeyondTheLastSequenceMovesTheCounterPastIt(t *testing.T) {
	// A cloud that applied sequence 100 ignores anything lower, so an edge whose database was
	// recreated must number its next report above it.
	s, _ := openStore(t)
	if err := s.Ack(100); err != nil {
		t.Fatal(err)
	}
	seq, err := s.Enqueue("Twin", "ns", "d", "k", []byte(`1`))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 101 {
		t.Errorf("sequence after an ack of 100 = %d, want 101", seq)
	}
}

func TestPendingPagesInSequenceOrder(t *testing.T) {
	s, _ := openStore(t)
	for i := range 10 {
		if _, err := s.Enqueue("Twin", "ns", fmt.Sprintf("d%d", i), "k", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	var after uint64
	for {
		page, err := s.Pending(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("a page of %d reports, the limit is 3", len(page))
		}
		for _, r := range page {
			seqs = append(seqs, r.Seq)
		}
		after = page[len(page)-1].Seq
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(seqs, want) {
		t.Errorf("paged sequences = %v, want %v", seqs, want)
	}
}

func TestConcurrentEnqueueHandsOutEverySequenceOnce(t *testing.T) {
	s, _ := openStore(t)
	const writers, each = 8, 25
	var (
		mu   sync.Mutex
		seqs []uint64
		wg   sync.WaitGroup
	)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Distinct keys, so nothing coalesces and every report must stay.
				seq, err := s.Enqueue("Twin", "ns", fmt.Sprintf("d%d", w), fmt.Sprintf("k%d", i), []byte(`1`))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seqs = append(seqs, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("sequences handed out = %v, want 1..%d each once", seqs, writers*each)
		}
	}
	reports, err := s.Pending(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != writers*each {
		t.Errorf("%d reports pending, want %d", len(reports), writers*each)
	}
}

func TestConcurrentEnqueueOfOneKeyLeavesTheNewest(t *testing.T) {
	s, _ := openStore(t)
	const writers = 8
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers)
	for w := range writers {
		wg.Go(func() {
			seq, err := s.Enqueue("Twin", "ns", "d", "temp", fmt.Appendf(nil, "%d", w))
			if err != nil {
				t.Error(err)
				return
			}
			seqs <- seq
		})
	}
	wg.Wait()
	close(seqs)
	var highest uint64
	for seq := range seqs {
		highest = max(highest, seq)
	}
	reports, err := s.Pending(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Seq != highest || highest != writers {
		t.Errorf("pending %v after %d concurrent reports of one key, want only sequence %d", reports, writers, writers)
	}
}
