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

// Package nodes keeps a core Node object for every EdgeNode, so the scheduler, `kubectl get
// nodes` and DaemonSets see edge nodes as users expect: the Node carries the edge role label
// and a NoSchedule taint that keeps ordinary workloads off, its Ready condition follows the
// agent's link to CloudHub, its capacity and system info are what the agent reported, and its
// Lease in kube-node-lease is renewed while the agent is connected.
//
// Every write (Node creation, Node status, Lease renewal) spends the shared status-write budget.
// Liveness costs one Lease write per connected node per renewal interval; the interval
// stretches with the fleet so that Lease renewals never take more than LeaseShare of the budget
// (10,000 nodes at 100 writes/s and a share of one half: a renewal every 200 s). Users of large
// fleets raise kube-controller-manager's --node-monitor-grace-period above that interval, or
// raise the budget; cloudcore warns when the interval outgrows the grace period it was told.
package nodes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/edgetwin/edgetwin/cloud/nodestatus"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// What marks a Node as an edge node.
const (
	// RoleLabel is set (empty value) on every edge Node; `kubectl get nodes` shows the role "edge".
	RoleLabel = "node-role.kubernetes.io/edge"
	// TaintKey keeps Pods off edge nodes unless they tolerate it (effect NoSchedule). A Pod that
	// tolerates it also gets edge autonomy (see the autonomy package).
	TaintKey = "node-role.kubernetes.io/edge"
	// LeaseNamespace holds node Leases.
	LeaseNamespace = "kube-node-lease"
)

// Reasons of the Ready condition on edge Nodes.
const (
	ReasonConnected      = "EdgeConnected"
	ReasonDisconnected   = "EdgeDisconnected"
	ReasonNeverConnected = "EdgeNeverConnected"
)

// Defaults.
const (
	DefaultLeaseInterval = 10 * time.Second
	DefaultLeaseDuration = 40 * time.Second
	DefaultLeaseShare    = 0.5
	// DefaultGracePeriod is kube-controller-manager's default --node-monitor-grace-period.
	DefaultGracePeriod = 50 * time.Second
)

// Links is what Presence needs of CloudHub's session tracking.
type Links interface {
	State(node string) (nodestatus.State, bool)
	Watch(f func(node string))
}

// Options configure Presence.
type Options struct {
	// Limiter is the shared status-write budget; its rate sizes the Lease renewals.
	Limiter *rate.Limiter
	// LeaseInterval is the renewal interval for small fleets; default 10s.
	LeaseInterval time.Duration
	// LeaseDuration is written into each Lease; default 40s.
	LeaseDuration time.Duration
	// LeaseShare is the most of the budget Lease renewals may take; default 0.5.
	LeaseShare float64
	// GracePeriod is kube-controller-manager's --node-monitor-grace-period, so cloudcore can warn
	// when renewals grow slower than it; default 50s.
	GracePeriod time.Duration
	// StartupGrace is how long after cloudcore starts a Node's Ready condition is left as an
	// earlier cloudcore wrote it while its agent has not reconnected yet, so that a restart of
	// cloudcore does not flip every node to Unknown and back (two writes per node, and
	// kube-controller-manager's taints in between); default 2m, as the EdgeNode controller's.
	StartupGrace time.Duration
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Log is the logger.
	Log logr.Logger
	// Clock defaults to the real clock.
	Clock clock.WithTicker
}

// Presence keeps the Node objects, their status and their Leases. Make it with New, then call
// SetupWithManager; it is also the reports.Applier of NodeStatus reports.
type Presence struct {
	client client.Client
	links  Links
	opts   Options
	status *statuswrite.Writer[string]
	leases *statuswrite.Writer[string]
	gauge  prometheus.Gauge

	mu       sync.Mutex
	reported map[string]*wire.NodeStatusReport // newest NodeStatus report per node
	renewed  map[string]time.Time              // when each connected node's Lease was last renewed
	warned   bool
	started  time.Time
}

// New makes Presence; c must read from the manager's cache.
func New(c client.Client, links Links, opts Options) *Presence {
	if opts.Limiter == nil {
		opts.Limiter = rate.NewLimiter(rate.Inf, 0)
	}
	if opts.LeaseInterval <= 0 {
		opts.LeaseInterval = DefaultLeaseInterval
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.LeaseShare <= 0 || opts.LeaseShare > 1 {
		opts.LeaseShare = DefaultLeaseShare
	}
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.StartupGrace <= 0 {
		opts.StartupGrace = 2 * time.Minute
	}
	p := &Presence{client: c, links: links, opts: opts, started: opts.Clock.Now(),
		reported: map[string]*wire.NodeStatusReport{}, renewed: map[string]time.Time{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetwin_node_lease_renew_interval_seconds",
			Help: "How often each connected edge node's Lease is renewed: the configured interval, " +
				"stretched so renewals stay within their share of the status-write budget."}),
	}
	p.status = statuswrite.New(statuswrite.Options{Name: "node_status", Limiter: opts.Limiter, Workers: 4,
		Registerer: opts.Registerer, Log: opts.Log}, p.writeStatus)
	p.leases = statuswrite.New(statuswrite.Options{Name: "node_lease", Limiter: opts.Limiter, Workers: 4,
		Registerer: opts.Registerer, Log: opts.Log}, p.renewLease)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.gauge)
	}
	return p
}

// SetupWithManager registers the Node reconciler, the two writers and the renewal loop.
func (p *Presence) SetupWithManager(mgr ctrl.Manager) error {
	if err := (&reconciler{p: p}).setup(mgr); err != nil {
		return fmt.Errorf("setting up the edge Node controller: %w", err)
	}
	p.links.Watch(func(node string) {
		p.status.Mark(node, nil)
		if st, ok := p.links.State(node); ok && st.Connected {
			p.leases.Mark(node, nil)
		}
	})
	for _, r := range []manager.Runnable{p.status, p.leases, manager.RunnableFunc(p.renewLoop)} {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	return nil
}

// RenewInterval is how often each connected node's Lease is renewed with n nodes connected.
func (p *Presence) RenewInterval(n int) time.Duration {
	interval := p.opts.LeaseInterval
	if qps := float64(p.opts.Limiter.Limit()); qps > 0 && p.opts.Limiter.Limit() != rate.Inf {
		if fit := time.Duration(float64(n) / (qps * p.opts.LeaseShare) * float64(time.Second)); fit > interval {
			interval = fit
		}
	}
	return interval
}

// renewLoop marks every connected node whose Lease is due. Renewals spread over the interval:
// each node is due a jittered interval after its own last renewal.
func (p *Presence) renewLoop(ctx context.Context) error {
	tick := p.opts.Clock.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		}
		now := p.opts.Clock.Now()
		p.mu.Lock()
		interval := p.RenewInterval(len(p.renewed))
		p.gauge.Set(interval.Seconds())
		if interval >= p.opts.GracePeriod && !p.warned {
			p.warned = true
			p.opts.Log.Info("WARNING: Lease renewals of edge nodes now come slower than kube-controller-manager's "+
				"node-monitor-grace-period; raise it (or the status-write budget) or connected nodes will turn NotReady",
				"renewInterval", interval, "gracePeriod", p.opts.GracePeriod, "connectedNodes", len(p.renewed))
		}
		var due []string
		for node, last := range p.renewed {
			// Up to a tenth early, so renewals of nodes that connected together drift apart.
			if now.Sub(last) >= interval-time.Duration(rand.Int64N(int64(interval/10)+1)) {
				due = append(due, node)
			}
		}
		p.mu.Unlock()
		for _, node := range due {
			p.leases.Mark(node, nil)
		}
	}
}
