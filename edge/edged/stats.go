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

package edged

import "sync/atomic"

type stats struct {
	syncs, syncErrors, containerStarts, pulls, pullFailures, statusReports, garbageCollected atomic.Uint64
}

func newStats() *stats { return &stats{} }

// Stats are Edged's counters, for edgecore's /metrics.
type Stats struct {
	// Pods is how many pods Edged runs (or is still stopping).
	Pods int
	// Syncs and SyncErrors count pod syncs and those the runtime failed.
	Syncs, SyncErrors uint64
	// ContainerStarts counts containers started, restarts included.
	ContainerStarts uint64
	// Pulls and PullFailures count image pulls.
	Pulls, PullFailures uint64
	// StatusReports counts pod statuses put in the outbox.
	StatusReports uint64
	// GarbageCollected counts pods and containers removed because no stored pod owns them.
	GarbageCollected uint64
}

// Stats returns the counters.
func (e *Edged) Stats() Stats {
	e.mu.Lock()
	pods := len(e.workers)
	e.mu.Unlock()
	s := e.stats
	return Stats{Pods: pods, Syncs: s.syncs.Load(), SyncErrors: s.syncErrors.Load(), ContainerStarts: s.containerStarts.Load(),
		Pulls: s.pulls.Load(), PullFailures: s.pullFailures.Load(), StatusReports: s.statusReports.Load(),
		GarbageCollected: s.garbageCollected.Load()}
}
