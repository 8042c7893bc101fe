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
// its kind (device twins, device state, ...). It enforces the protocol's ordering rule: per
// node, a report with a sequence at or below the highest one applied is a replay and is
// skipped, so an old value never overwrites a newer one.
package reports

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Applier applies the reports of one kind. Apply must not block on the API server for long:
// it records the report (for example in a coalescing buffer that a controller drains under the
// status-write budget) and returns; an error leaves the report unacknowledged, so the edge
// sends it again.
type Applier interface {
	Apply(ctx context.Context, node string, r wire.Report) error
}

// Router implements hub.ReportSink.
type Router struct {
	log      logr.Logger
	appliers map[string]Applier
	unknown  prometheus.Counter
	replays  prometheus.Counter

	mu      sync.Mutex
	applied map[string]uint64 // highest sequence applied, per node
}

// NewRouter makes a router; reg may be nil.
func NewRouter(log logr.Logger, reg prometheus.Registerer) *Router {
	r := &Router{log: log, appliers: map[string]Applier{}, applied: map[string]uint64{},
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_reports_unknown_kind_total",
			Help: "Reports of a kind no applier handles; acknowledged so they do not block the outbox."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_reports_replayed_total",
			Help: "Reports skipped because a report with a higher sequence was already applied."}),
	}
	if reg != nil {
		reg.MustRegister(r.unknown, r.replays)
	}
	return r
}

// Handle registers the applier of a report kind.
func (r *Router) Handle(kind string, a Applier) { r.appliers[kind] = a }

// Apply applies reports in order and returns the highest sequence applied. It stops at the
// first failure, so nothing after an unapplied report is acknowledged.
func (r *Router) Apply(ctx context.Context, node string, reports []wire.Report) (uint64, error) {
	r.mu.Lock()
	done := r.applied[node]
	r.mu.Unlock()
	highest := done
	for _, rep := range reports {
		if rep.Seq <= done {
			r.replays.Inc()
			continue
		}
		a, ok := r.appliers[rep.Kind]
		if !ok {
			r.unknown.Inc()
			r.log.V(1).Info("Skipping a report of an unknown kind", "node", node, "kind", rep.Kind, "seq", rep.Seq)
		} else if err := a.Apply(ctx, node, rep); err != nil {
			r.setApplied(node, highest)
			return highest, fmt.Errorf("applying %s report %d of node %s: %w", rep.Kind, rep.Seq, node, err)
		}
		highest = max(highest, rep.Seq)
	}
	r.setApplied(node, highest)
	return highest, nil
}

func (r *Router) setApplied(node string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.applied[node] {
		r.applied[node] = seq
	}
}
