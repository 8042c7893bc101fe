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

// Package statuswrite writes status for many objects under one shared budget of API server
// writes. Callers keep the newest state of each object themselves and mark it dirty; the writer
// writes each dirty key at most once per interval, all keys together no faster than the shared
// limiter allows, retries failed writes, and calls the done callbacks given with a mark only
// after a write that started after the mark succeeded. That last rule is what lets an edge
// report be acknowledged only once the status carrying it has landed.
//
// The Device status writer (controllers.DeviceReports) predates this package and keeps its own
// queue because it merges per-property values; Node, Lease and Pod status use this one. All of
// them share one *rate.Limiter, the --status-write-qps budget.
package statuswrite

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
)

// Result says what one write did; it labels the writes metric.
type Result string

// Results of a write.
const (
	// Patched: the object was written.
	Patched Result = "patched"
	// Unchanged: the object already said this; nothing was written and no budget spent.
	Unchanged Result = "unchanged"
	// Dropped: the write can never happen (the object is gone or belongs elsewhere); the marks
	// are finished, as if written, so the edge stops resending them.
	Dropped Result = "dropped"
	// Failed: the write failed and will be retried.
	Failed Result = "error"
)

// ErrNotYet wrapped in a write's error says the write cannot happen yet for an expected reason
// (the object is about to be created); it is retried without logging an error.
var ErrNotYet = errors.New("not yet")

// WriteFunc writes key's current state, calling budget.Spend before each request that writes.
// An error means nothing was written; the key is tried again after RetryAfter.
type WriteFunc[K comparable] func(ctx context.Context, key K, budget Budget) (Result, error)

// Budget lets a write spend the shared budget only when it is about to send a request, so a
// write that finds nothing to change costs nothing.
type Budget interface {
	// Spend waits for one write's worth of budget.
	Spend(ctx context.Context) error
}

// Options configure a Writer.
type Options struct {
	// Name names the writer in metrics ("node_status", "pod_status") and logs.
	Name string
	// Interval is the least time between two writes of one key; zero writes as soon as the
	// budget allows.
	Interval time.Duration
	// Limiter is the shared budget; required.
	Limiter *rate.Limiter
	// Workers write in parallel; default 4.
	Workers int
	// RetryAfter is how long a failed write waits; default 1s.
	RetryAfter time.Duration
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Log is the writer's logger.
	Log logr.Logger
}

// Writer is a budgeted, coalescing status writer. Its zero value is not usable; call New.
type Writer[K comparable] struct {
	opts    Options
	write   WriteFunc[K]
	queue   workqueue.TypedDelayingInterface[K]
	metrics *metrics

	mu        sync.Mutex
	dirty     map[K]*mark
	lastWrite map[K]time.Time
}

// mark is one key's unwritten change.
type mark struct {
	done   []func()
	since  time.Time
	queued bool
}

// New makes a writer that calls write for each dirty key. Start it with Start.
func New[K comparable](opts Options, write WriteFunc[K]) *Writer[K] {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Limiter == nil {
		opts.Limiter = rate.NewLimiter(rate.Inf, 0)
	}
	return &Writer[K]{
		opts: opts, write: write, metrics: newMetrics(opts.Registerer, opts.Name),
		queue:     workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[K]{Name: opts.Name}),
		dirty:     map[K]*mark{},
		lastWrite: map[K]time.Time{},
	}
}

// Mark says key's state changed; done (may be nil) is called once a write that began after this
// call has landed (or the write was dropped as impossible).
func (w *Writer[K]) Mark(key K, done func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.markFor(key)
	if done != nil {
		m.done = append(m.done, done)
	}
	w.schedule(key, m, time.Until(w.lastWrite[key].Add(w.opts.Interval)))
}

// Pending is the number of keys waiting for a write.
func (w *Writer[K]) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.dirty)
}

// markFor returns key's mark, creating it. Callers hold w.mu.
func (w *Writer[K]) markFor(key K) *mark {
	m, ok := w.dirty[key]
	if !ok {
		m = &mark{since: time.Now()}
		w.dirty[key] = m
		w.metrics.pending.Set(float64(len(w.dirty)))
	}
	return m
}

// schedule queues key's write after d, once. Callers hold w.mu.
func (w *Writer[K]) schedule(key K, m *mark, d time.Duration) {
	if m.queued {
		return
	}
	m.queued = true
	w.queue.AddAfter(key, d)
}

// Start runs the workers until ctx ends (a manager.Runnable). Marks still pending then are not
// finished, so whatever waits on them (an edge's outbox) keeps them for the next cloudcore.
func (w *Writer[K]) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range w.opts.Workers {
		wg.Go(func() {
			for {
				key, shutdown := w.queue.Get()
				if shutdown {
					return
				}
				w.flush(ctx, key)
				w.queue.Done(key)
			}
		})
	}
	wg.Go(func() { w.forgetIdle(ctx) })
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// forgetIdle drops the last-write times of keys quiet for a while, so the map does not grow with
// every key ever written.
func (w *Writer[K]) forgetIdle(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			w.mu.Lock()
			for k, t := range w.lastWrite {
				if now.Sub(t) > w.opts.Interval+time.Minute {
					delete(w.lastWrite, k)
				}
			}
			w.mu.Unlock()
		}
	}
}

// flush writes key, or puts its mark back to be tried again.
func (w *Writer[K]) flush(ctx context.Context, key K) {
	w.mu.Lock()
	if wait := time.Until(w.lastWrite[key].Add(w.opts.Interval)); wait > 0 {
		// Marked while the last write was in flight: hold it until the interval has passed.
		if m, ok := w.dirty[key]; ok {
			m.queued = false
			w.schedule(key, m, wait)
		}
		w.mu.Unlock()
		return
	}
	m := w.dirty[key]
	delete(w.dirty, key)
	w.metrics.pending.Set(float64(len(w.dirty)))
	w.mu.Unlock()
	if m == nil {
		return
	}
	result, err := w.write(ctx, key, budget[K]{w})
	if err != nil {
		result = Failed
	}
	w.metrics.writes.WithLabelValues(string(result)).Inc()
	if err != nil {
		if ctx.Err() == nil && !apierrors.IsConflict(err) && !errors.Is(err, ErrNotYet) {
			w.opts.Log.Error(err, "Writing status; will retry", "writer", w.opts.Name, "key", key)
		}
		w.putBack(key, m)
		return
	}
	now := time.Now()
	w.mu.Lock()
	if result == Patched {
		w.lastWrite[key] = now
	}
	w.mu.Unlock()
	w.metrics.lag.Observe(now.Sub(m.since).Seconds())
	for _, done := range m.done {
		done()
	}
}

// putBack returns a mark whose write failed; marks made meanwhile join it.
func (w *Writer[K]) putBack(key K, old *mark) {
	if w.queue.ShuttingDown() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.markFor(key)
	m.done = append(old.done, m.done...)
	m.since = old.since
	m.queued = false
	w.schedule(key, m, w.opts.RetryAfter)
}

// budget is the Budget a write spends: the shared limiter, counting the waits.
type budget[K comparable] struct{ w *Writer[K] }

func (b budget[K]) Spend(ctx context.Context) error {
	if !b.w.opts.Limiter.Allow() {
		b.w.metrics.throttled.Inc()
		return b.w.opts.Limiter.Wait(ctx)
	}
	return nil
}

type metrics struct {
	writes    *prometheus.CounterVec
	throttled prometheus.Counter
	pending   prometheus.Gauge
	lag       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, name string) *metrics {
	labels := prometheus.Labels{"writer": name}
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgetwin_status_writes_total", ConstLabels: labels,
			Help: "Budgeted status writes, by writer and result (patched, unchanged, dropped, error)."}, []string{"result"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_status_writes_throttled_total", ConstLabels: labels,
			Help: "Budgeted status writes that waited for the shared status-write budget."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetwin_status_writes_pending", ConstLabels: labels,
			Help: "Objects with a change waiting for its status write."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edgetwin_status_write_lag_seconds", ConstLabels: labels,
			Help:    "Time from a change being marked to the status write that carries it.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300}}),
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.throttled, m.pending, m.lag)
	}
	return m
}
