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

// Package reports receives the edge's reports from CloudHub and hands each to the applier of
// its kind (device twins, device state, ...). It keeps the protocol's two promises: a report is
// acknowledged to the edge only once it (and every report before it) has been applied, so a
// report cloudcore took but had not yet written is sent again after a cloudcore restart; and per
// node, a report with a sequence at or below one already taken is a replay and is skipped, so an
// old value never overwrites a newer one.
package reports

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Applier applies the reports of one kind. Apply must not block on the API server: it records
// the report (for example in a coalescing buffer that is written out under the status-write
// budget) and returns. It calls done once the report has been applied, or dropped for good (its
// device is gone), from any goroutine and at most once. An error means the report was not taken:
// it stays unacknowledged, and the edge sends it again.
type Applier interface {
	Apply(ctx context.Context, node string, r wire.Report, done func()) error
}

// AppliedFunc learns that every report of node up to seq has been applied (hub.Hub.Applied).
type AppliedFunc func(node string, seq uint64)

// Router implements hub.ReportSink.
type Router struct {
	log      logr.Logger
	appliers map[string]Applier
	unknown  prometheus.Counter
	replays  prometheus.Counter
	onApply  AppliedFunc

	mu    sync.Mutex
	nodes map[string]*nodeReports
}

// nodeReports tracks one node's reports between being taken and being applied. Appliers finish
// out of order (one device's write can land before another's), but the acknowledgement is a
// single sequence number, so it only advances over a prefix of finished reports.
type nodeReports struct {
	taken    uint64          // highest sequence taken
	applied  uint64          // highest sequence such that it and everything before it is applied
	waiting  []uint64        // sequences taken and not yet covered by applied, in order
	finished map[uint64]bool // members of waiting whose applier called done
}

// NewRouter makes a router; reg may be nil. onApplied is told when reports finished after
// Apply returned; it may be nil when every applier finishes within Apply (tests).
func NewRouter(log logr.Logger, reg prometheus.Registerer, onApplied AppliedFunc) *Router {
	r := &Router{log: log, appliers: map[string]Applier{}, nodes: map[string]*nodeReports{}, onApply: onApplied,
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_reports_unknown_kind_total",
			Help: "Reports of a kind no applier handles; acknowledged so they do not block the outbox."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_reports_replayed_total",
			Help: "Reports skipped because a report with the same or a higher sequence was already taken."}),
	}
	if reg != nil {
		reg.MustRegister(r.unknown, r.replays)
	}
	return r
}

// Handle registers the applier of a report kind.
func (r *Router) Handle(kind string, a Applier) { r.appliers[kind] = a }

// Apply hands reports in order to their appliers and returns the highest sequence already
// applied. It stops at the first report an applier does not take, so nothing after it is
// acknowledged; the edge sends it again.
func (r *Router) Apply(ctx context.Context, node string, reports []wire.Report) (uint64, error) {
	n := r.node(node)
	for _, rep := range reports {
		r.mu.Lock()
		replay := rep.Seq <= n.taken
		r.mu.Unlock()
		if replay {
			r.replays.Inc()
			continue
		}
		a, ok := r.appliers[rep.Kind]
		if !ok {
			r.unknown.Inc()
			r.log.V(1).Info("Skipping a report of an unknown kind", "node", node, "kind", rep.Kind, "seq", rep.Seq)
			r.take(n, rep.Seq)
			r.finish(node, n, rep.Seq, false)
			continue
		}
		r.take(n, rep.Seq)
		seq := rep.Seq
		var once sync.Once
		if err := a.Apply(ctx, node, rep, func() { once.Do(func() { r.finish(node, n, seq, true) }) }); err != nil {
			r.untake(n, seq)
			return r.Applied(node), fmt.Errorf("applying %s report %d of node %s: %w", rep.Kind, rep.Seq, node, err)
		}
	}
	return r.Applied(node), nil
}

// Applied returns the highest sequence of node up to which every report has been applied.
func (r *Router) Applied(node string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[node]; ok {
		return n.applied
	}
	return 0
}

func (r *Router) node(name string) *nodeReports {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[name]
	if !ok {
		n = &nodeReports{finished: map[uint64]bool{}}
		r.nodes[name] = n
	}
	return n
}

func (r *Router) take(n *nodeReports, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n.taken = seq
	n.waiting = append(n.waiting, seq)
}

// untake forgets a report its applier refused; it was the last one taken.
func (r *Router) untake(n *nodeReports, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := len(n.waiting); k > 0 && n.waiting[k-1] == seq {
		n.waiting = n.waiting[:k-1]
		delete(n.finished, seq)
	}
	n.taken = n.applied
	if k := len(n.waiting); k > 0 {
		n.taken = n.waiting[k-1]
	}
}

// finish marks seq applied and advances the node's applied sequence over the finished prefix.
// notify says whether to tell onApplied (not when called from within Apply, whose return value
// carries the new sequence).
func (r *Router) finish(node string, n *nodeReports, seq uint64, notify bool) {
	r.mu.Lock()
	n.finished[seq] = true
	before := n.applied
	i := 0
	for ; i < len(n.waiting) && n.finished[n.waiting[i]]; i++ {
		delete(n.finished, n.waiting[i])
		n.applied = n.waiting[i]
	}
	n.waiting = n.waiting[i:]
	advanced := n.applied > before
	applied := n.applied
	r.mu.Unlock()
	if advanced && notify && r.onApply != nil {
		r.onApply(node, applied)
	}
}
