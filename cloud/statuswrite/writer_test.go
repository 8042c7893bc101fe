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

package statuswrite

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"
)

// recorder is a WriteFunc that counts writes per key and can be told to fail.
type recorder struct {
	mu     sync.Mutex
	writes map[string]int
	fail   map[string]int // writes of the key that fail before one succeeds
	gate   chan struct{}  // when set, every write waits for a receive from it
}

func newRecorder() *recorder { return &recorder{writes: map[string]int{}, fail: map[string]int{}} }

func (r *recorder) write(ctx context.Context, key string, b Budget) (Result, error) {
	if r.gate != nil {
		<-r.gate
	}
	if err := b.Spend(ctx); err != nil {
		return Failed, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[key] > 0 {
		r.fail[key]--
		return Failed, errors.New("the API server said no")
	}
	r.writes[key]++
	return Patched, nil
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[key]
}

func start(t *testing.T, opts Options, r *recorder) *Writer[string] {
	t.Helper()
	if opts.RetryAfter == 0 {
		opts.RetryAfter = 10 * time.Millisecond
	}
	w := New(opts, r.write)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = w.Start(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return w
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMarksWhileAWriteIsHeldCoalesceIntoOneWrite(t *testing.T) {
	r := newRecorder()
	r.gate = make(chan struct{})
	w := start(t, Options{Name: "t", Workers: 1}, r)
	var done atomic.Int32
	w.Mark("a", func() { done.Add(1) }) // this write starts and waits at the gate
	eventually(t, "the first write to start", func() bool { return w.Pending() == 0 })
	for range 50 {
		w.Mark("a", func() { done.Add(1) })
	}
	if got := done.Load(); got != 0 {
		t.Fatalf("%d done callbacks ran before any write landed", got)
	}
	r.gate <- struct{}{} // first write lands
	eventually(t, "the first mark to be done", func() bool { return done.Load() >= 1 })
	if got := done.Load(); got != 1 {
		t.Fatalf("the first write finished %d marks, want only the one made before it began", got)
	}
	r.gate <- struct{}{} // one more write carries all 50 later marks
	eventually(t, "every mark to be done", func() bool { return done.Load() == 51 })
	if got := r.count("a"); got != 2 {
		t.Fatalf("51 marks took %d writes, want 2", got)
	}
}

func TestAFailedWriteIsRetriedAndOnlyThenDone(t *testing.T) {
	r := newRecorder()
	r.fail["a"] = 3
	w := start(t, Options{Name: "t"}, r)
	var done atomic.Int32
	w.Mark("a", func() { done.Add(1) })
	eventually(t, "the write to land after three failures", func() bool { return r.count("a") == 1 })
	eventually(t, "the mark to be done", func() bool { return done.Load() == 1 })
	r.mu.Lock()
	left := r.fail["a"]
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d planned failures never happened", left)
	}
}

func TestTheSharedBudgetBoundsWritesAcrossWriters(t *testing.T) {
	// A budget of 5 writes now and practically nothing after: two writers sharing it write 5
	// keys between them and leave the rest pending.
	limiter := rate.NewLimiter(rate.Limit(1e-6), 5)
	r1, r2 := newRecorder(), newRecorder()
	w1 := start(t, Options{Name: "one", Limiter: limiter}, r1)
	w2 := start(t, Options{Name: "two", Limiter: limiter}, r2)
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} // more than burst + workers per writer
	for _, k := range keys {
		w1.Mark(k, nil)
		w2.Mark(k, nil)
	}
	total := func() int {
		n := 0
		for _, k := range keys {
			n += r1.count(k) + r2.count(k)
		}
		return n
	}
	// Once all 8 workers wait for budget, no write can slip through any more.
	eventually(t, "every worker to wait for budget", func() bool {
		return value(w1.metrics.throttled)+value(w2.metrics.throttled) == 8
	})
	if got := w1.Pending() + w2.Pending(); got != 20-5-8 {
		t.Fatalf("%d keys pending, want the 7 no worker could take", got)
	}
	if got := total(); got != 5 {
		t.Fatalf("%d writes went through a budget of 5", got)
	}
}

func TestAKeyIsWrittenAtMostOncePerInterval(t *testing.T) {
	r := newRecorder()
	w := start(t, Options{Name: "t", Interval: time.Hour}, r)
	w.Mark("a", nil)
	eventually(t, "the first write", func() bool { return r.count("a") == 1 })
	w.Mark("a", nil)
	// Another key's write goes through meanwhile, so the workers are demonstrably running.
	w.Mark("b", nil)
	eventually(t, "b's write", func() bool { return r.count("b") == 1 })
	if got, pending := r.count("a"), w.Pending(); got != 1 || pending != 1 {
		t.Fatalf("a written %d times with %d pending; want 1 write and the second mark held for the interval", got, pending)
	}
}

func TestAnUnchangedWriteDoesNotStartTheInterval(t *testing.T) {
	var calls atomic.Int32
	w := New(Options{Name: "t", Interval: time.Hour}, func(context.Context, string, Budget) (Result, error) {
		calls.Add(1)
		return Unchanged, nil
	})
	go func() { _ = w.Start(t.Context()) }()
	w.Mark("a", nil)
	eventually(t, "the first write", func() bool { return calls.Load() == 1 })
	w.Mark("a", nil)
	eventually(t, "the second write, not held for an interval", func() bool { return calls.Load() == 2 })
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
