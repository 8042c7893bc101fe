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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Governor defaults.
const (
	DefaultTargetLatency = 250 * time.Millisecond
	DefaultWindow        = time.Second
)

// GovernorOptions configure a Governor.
type GovernorOptions struct {
	// Max is the rate the budget returns to while the API server answers fast (writes/s).
	Max float64
	// Burst is the limiter's burst.
	Burst int
	// Min is the least rate it falls to; default Max/20.
	Min float64
	// Target is the write latency above which the API server counts as overloaded; default
	// DefaultTargetLatency.
	Target time.Duration
	// Window is how often the rate is adjusted, from the writes timed since; default 1s.
	Window time.Duration
	// Registerer receives edgetwin_<Name>_budget_per_second; nil leaves it unregistered.
	Registerer prometheus.Registerer
	Name       string
}

// Governor is a write budget that yields to the API server's load: it halves its rate when
// more than a tenth of the writes it timed in a window took longer than Target, and gives back
// a tenth of Max each window in which none did (additive increase, multiplicative decrease, as
// TCP does). Edge status writes are background work; when the API server is saturated, a fixed
// budget spends the CPU that users' own requests are waiting for. On 2 cores at 100 spec
// patches a second, a fixed 100 device status writes a second held each patch for seconds
// (docs/benchmarks.md).
type Governor struct {
	limiter  *rate.Limiter
	max, min rate.Limit
	burst    int
	target   time.Duration
	window   time.Duration
	budget   prometheus.Gauge

	mu          sync.Mutex
	slow, timed int
}

// NewGovernor makes a governor at its full rate. Run it with Start.
func NewGovernor(o GovernorOptions) *Governor {
	if o.Min <= 0 || o.Min > o.Max {
		o.Min = o.Max / 20
	}
	if o.Target <= 0 {
		o.Target = DefaultTargetLatency
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Burst <= 0 {
		o.Burst = 1
	}
	name := o.Name
	if name == "" {
		name = "status_write"
	}
	g := &Governor{
		limiter: rate.NewLimiter(rate.Limit(o.Max), o.Burst),
		max:     rate.Limit(o.Max), min: rate.Limit(o.Min), burst: o.Burst, target: o.Target, window: o.Window,
		budget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetwin_" + name + "_budget_per_second",
			Help: "The rate the write governor allows now: the configured budget, lowered while the API server answers slowly."}),
	}
	g.budget.Set(o.Max)
	if o.Registerer != nil {
		o.Registerer.MustRegister(g.budget)
	}
	return g
}

// Wait blocks until the budget allows a write, or ctx ends.
func (g *Governor) Wait(ctx context.Context) error { return g.limiter.Wait(ctx) }

// Limit is the rate allowed now.
func (g *Governor) Limit() rate.Limit { return g.limiter.Limit() }

// Observe records how long one write took, from sending it to the API server's answer
// (whatever the answer was: a timeout is the slowest answer of all).
func (g *Governor) Observe(took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timed++
	if took > g.target {
		g.slow++
	}
}

// Adjust ends a window: it lowers or raises the rate from the writes observed since the last.
func (g *Governor) Adjust() {
	g.mu.Lock()
	slow, timed := g.slow, g.timed
	g.slow, g.timed = 0, 0
	g.mu.Unlock()
	limit := g.limiter.Limit()
	switch {
	case slow*10 > timed:
		limit = max(g.min, limit/2)
	case slow == 0:
		limit = min(g.max, limit+g.max/10)
	default:
		return // a few slow writes: hold
	}
	g.limiter.SetLimit(limit)
	// The burst shrinks with the rate: a full bucket saved up at a low rate would otherwise
	// land on the overloaded API server all at once.
	g.limiter.SetBurst(max(1, int(float64(g.burst)*float64(limit/g.max))))
	g.budget.Set(float64(limit))
}

// Start adjusts the rate every window until ctx ends (manager.Runnable).
func (g *Governor) Start(ctx context.Context) error {
	tick := time.NewTicker(g.window)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			g.Adjust()
		}
	}
}
