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
	"slices"
	"testing"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

type recorder struct {
	got    []uint64
	failAt uint64
}

func (r *recorder) Apply(_ context.Context, _ string, rep wire.Report) error {
	if rep.Seq == r.failAt {
		return errors.New("the API server is away")
	}
	r.got = append(r.got, rep.Seq)
	return nil
}

func reps(kind string, seqs ...uint64) []wire.Report {
	out := make([]wire.Report, 0, len(seqs))
	for _, s := range seqs {
		out = append(out, wire.Report{Seq: s, Kind: kind, Name: "d", Body: json.RawMessage("{}")})
	}
	return out
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	t.Run("reports are applied in order and the highest sequence is returned", func(t *testing.T) {
		rec := &recorder{}
		r := NewRouter(logr.Discard(), nil)
		r.Handle("Twin", rec)
		seq, err := r.Apply(ctx, "n", reps("Twin", 1, 2, 3))
		if err != nil || seq != 3 || !slices.Equal(rec.got, []uint64{1, 2, 3}) {
			t.Fatalf("Apply = %d, %v; applied %v", seq, err, rec.got)
		}
	})
	t.Run("a replay of applied reports is skipped, per node", func(t *testing.T) {
		rec := &recorder{}
		r := NewRouter(logr.Discard(), nil)
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
		r := NewRouter(logr.Discard(), nil)
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
		r := NewRouter(logr.Discard(), nil)
		if seq, err := r.Apply(ctx, "n", reps("FromTheFuture", 7)); err != nil || seq != 7 {
			t.Fatalf("Apply = %d, %v; want 7", seq, err)
		}
	})
}
