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

package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// recorder finishes reports at once, or holds them for the test to finish later.
type recorder struct {
	mu     sync.Mutex
	got    []uint64
	failAt uint64
	hold   bool
	held   map[uint64]func()
}

func (r *recorder) Apply(_ context.Context, _ string, rep wire.Report, done func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep.Seq == r.failAt {
		return errors.New("the API server is away")
	}
	r.got = append(r.got, rep.Seq)
	if r.hold {
		if r.held == nil {
			r.held = map[uint64]func(){}
		}
		r.held[rep.Seq] = done
		return nil
	}
	done()
	return nil
}

func (r *recorder) finish(seq uint64) {
	r.mu.Lock()
	done := r.held[seq]
	r.mu.Unlock()
	done()
}

func reps(kind string, seqs ...uint64) []wire.Report {
	out := make([]wire.Report, 0, len(seqs))
	for _, s := range seqs {
		out = append(out, wire.Report{Seq: s, Kind: kind, Name: "d", Body: json.RawMessage("{}")})
	}
	return out
}

// notices records what the router tells the hub after Apply returned.
type notices struct {
	mu  sync.Mutex
	got []string
}

func (n *notices) applied(node string, seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, fmt.Sprintf("%s:%d", node, seq))
}

func (n *notices) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	t.Run("reports are applied in order and the highest sequence is returned", func(t *testing.T) {
		rec := &recorder{}
		r := NewRouter(logr.Discard(), nil, nil)
		r.Handle("Twin", rec)
		seq, err := r.Apply(ctx, "n", reps("Twin", 1, 2, 3))
		if err != nil || seq != 3 || !slices.Equal(rec.got, []uint64{1, 2, 3}) {
			t.Fatalf("Apply = %d, %v; applied %v", seq, err, rec.got)
		}
	})
	t.Run("a replay of taken reports is skipped, per node", func(t *testing.T) {
		rec := &recorder{}
		r := NewRouter(logr.Discard(), nil, nil)
		r.Handle("Twin", rec)
		_, _ = r.Apply(ctx, "n", reps("Twin", 1, 2))
		seq, _ := r.Apply(ctx, "n", reps("Twin", 2, 3))
		_, _ = r.Apply(ctx, "other", reps("Twin", 1))
		if seq != 3 || !slices.Equal(rec.got, []uint64{1, 2, 3, 1}) {
			t.Fatalf("applied %v (seq %d); want 1 2 3 on n and 1 on other", rec.got, seq)
		}
	})
	t.Run("a failure stops the batch and acknowledges only what came before", func(t *testing.T) {
		rec := &recorder{failAt: 3}
		r := NewRouter(logr.Discard(), nil, nil)
		r.Handle("Twin", rec)
		seq, err := r.Apply(ctx, "n", reps("Twin", 1, 2, 3, 4))
		if err == nil || seq != 2 || !slices.Equal(rec.got, []uint64{1, 2}) {
			t.Fatalf("Apply = %d, %v; applied %v; want 2 and an error", seq, err, rec.got)
		}
		rec.failAt = 0
		seq, err = r.Apply(ctx, "n", reps("Twin", 3, 4))
		if err != nil || seq != 4 || !slices.Equal(rec.got, []uint64{1, 2, 3, 4}) {
			t.Fatalf("the retry: Apply = %d, %v; applied %v", seq, err, rec.got)
		}
	})
	t.Run("a report of an unknown kind is acknowledged without an applier", func(t *testing.T) {
		r := NewRouter(logr.Discard(), nil, nil)
		if seq, err := r.Apply(ctx, "n", reps("FromTheFuture", 7)); err != nil || seq != 7 {
			t.Fatalf("Apply = %d, %v; want 7", seq, err)
		}
	})
	t.Run("reports finished later are acknowledged over the finished prefix only", func(t *testing.T) {
		rec := &recorder{hold: true}
		var told notices
		r := NewRouter(logr.Discard(), nil, told.applied)
		r.Handle("Twin", rec)
		seq, err := r.Apply(ctx, "n", reps("Twin", 4, 6, 9))
		if err != nil || seq != 0 {
			t.Fatalf("Apply = %d, %v; want 0: nothing is written yet", seq, err)
		}
		rec.finish(6) // a later report lands first: 4 is still unwritten, so nothing is acknowledged
		if got := told.list(); len(got) != 0 || r.Applied("n") != 0 {
			t.Fatalf("after finishing 6 alone: told %v, applied %d; want nothing", got, r.Applied("n"))
		}
		rec.finish(4)
		rec.finish(9)
		if got := told.list(); !slices.Equal(got, []string{"n:6", "n:9"}) {
			t.Fatalf("told %v; want n:6 then n:9", got)
		}
		// The edge reconnects and sends what was not acknowledged when it left: nothing is taken twice.
		if seq, _ := r.Apply(ctx, "n", reps("Twin", 9, 10)); seq != 9 || !slices.Equal(rec.got, []uint64{4, 6, 9, 10}) {
			t.Fatalf("after the resend: Apply = %d, taken %v", seq, rec.got)
		}
	})
	t.Run("a report taken but not finished is not acknowledged on a resend", func(t *testing.T) {
		rec := &recorder{hold: true}
		r := NewRouter(logr.Discard(), nil, nil)
		r.Handle("Twin", rec)
		_, _ = r.Apply(ctx, "n", reps("Twin", 1))
		if seq, _ := r.Apply(ctx, "n", reps("Twin", 1)); seq != 0 || len(rec.got) != 1 {
			t.Fatalf("resend of an unfinished report: Apply = %d, taken %v; want 0 and one take", seq, rec.got)
		}
	})
}
