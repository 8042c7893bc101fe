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

package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Defaults of the status-write budget.
const (
	// DefaultStatusInterval is the least time between two status writes of one device.
	DefaultStatusInterval = time.Second
	// DefaultStatusQPS and DefaultStatusBurst bound the status writes made for the edge across
	// the cluster: Device status and, in cloudcore, Node, Lease and Pod writes too. 200 since
	// Nodes and Leases joined the budget (at 1,000 nodes Lease renewals take half of it); the
	// Device status share yields to a slow API server (statuswrite.Governor).
	DefaultStatusQPS   = 200
	DefaultStatusBurst = 200
)

// ReportsOptions set the status-write budget of DeviceReports.
type ReportsOptions struct {
	// Interval is the least time between two status writes of one device; default 1s.
	Interval time.Duration
	// QPS and Burst bound the status writes of all devices together; defaults 100 and 100.
	QPS   float64
	Burst int
	// Limiter, when set, is the budget instead of QPS and Burst: cloudcore shares one between
	// Device, Node, Lease and Pod status writes.
	Limiter *rate.Limiter
	// Workers write in parallel; default 16. A write waits for the API server, so the budget can
	// only be spent if Workers ≥ QPS × the API server's latency: 4 workers held a 100/s budget
	// to 47 writes/s under load (see docs/benchmarks.md).
	Workers int
	// Governor, when set, is a second budget in front of Limiter that yields to the API
	// server's load: it times this writer's patches and lowers its rate while they are slow
	// (cloud/statuswrite.Governor). Device status is the bulk of the edge's writes.
	Governor *statuswrite.Governor
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Log is the writer's logger.
	Log logr.Logger
}

// DeviceReports applies the edge's DeviceTwin and DeviceState reports to Device status under a
// budget: reports are coalesced per device (the newest value of each property wins) and written
// at most once per device per Interval, and all writes together stay under QPS. A chatty device
// therefore costs one write per interval however fast it reports, and its newest value always
// lands. It is the reports.Applier of both kinds; a report counts as applied (and the edge is
// told) only once the status patch carrying it has landed.
//
// It is also the one writer of Device status: the Device controller does not patch status
// itself but asks for a write (Touch), which shares the device's interval and the budget with
// the reports. One writer per device means cloudcore's writes never race each other, so they
// can go without an optimistic lock: a Device whose spec a user patches every second would
// otherwise refuse nearly every status write as a conflict (see docs/benchmarks.md).
//
// Order is by the edge's report sequence, not by its clock: the router hands reports over in
// sequence order, so a later report replaces an earlier one even if the edge's clock stepped
// back in between. A node's reports about a device that is not (or no longer) on that node are
// dropped, so one edge node cannot write another's devices.
type DeviceReports struct {
	client   client.Client
	interval time.Duration
	limiter  *rate.Limiter
	governor *statuswrite.Governor
	workers  int
	log      logr.Logger
	metrics  *reportMetrics
	queue    workqueue.TypedDelayingInterface[reportKey]

	mu        sync.Mutex
	pending   map[reportKey]*pendingReports
	lastWrite map[reportKey]time.Time
	// written holds the reports of each device's recent writes. The cache may not have seen a
	// write yet when the next one is computed from it; laying these under the pending reports
	// keeps a write from putting back a value an earlier one replaced. Kept as long as lastWrite.
	written map[reportKey]*pendingReports
}

// Results of a status write, the label of edgetwin_device_status_writes_total.
const (
	resultPatched   = "patched"
	resultUnchanged = "unchanged"
	resultConflict  = "conflict"
	resultError     = "error"
	resultDropped   = "dropped"
)

// reportKey names a device as one node reported it.
type reportKey struct {
	node string
	types.NamespacedName
}

// pendingReports are one device's reports not yet written.
type pendingReports struct {
	twins  map[string]wire.TwinReport
	state  *wire.StateReport
	done   []func()
	since  time.Time // when the oldest of them arrived
	queued bool      // a write is scheduled
}

// NewDeviceReports makes the writer; c must read from the manager's cache (so a write costs
// one request) and have the Device indexes of SetupWithManager. Start it with the manager.
func NewDeviceReports(c client.Client, opts ReportsOptions) *DeviceReports {
	if opts.Interval <= 0 {
		opts.Interval = DefaultStatusInterval
	}
	if opts.QPS <= 0 {
		opts.QPS = DefaultStatusQPS
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultStatusBurst
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Limiter == nil {
		opts.Limiter = rate.NewLimiter(rate.Limit(opts.QPS), opts.Burst)
	}
	return &DeviceReports{
		client: c, interval: opts.Interval, workers: opts.Workers, log: opts.Log,
		limiter:   opts.Limiter,
		governor:  opts.Governor,
		metrics:   newReportMetrics(opts.Registerer, opts.QPS),
		queue:     workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[reportKey]{Name: "device_reports"}),
		pending:   map[reportKey]*pendingReports{},
		lastWrite: map[reportKey]time.Time{},
		written:   map[reportKey]*pendingReports{},
	}
}

// Touch asks for a status write of the device on node without a report: the Device controller
// calls it when what it derives (conditions, state, observedGeneration) differs from the
// status. The write recomputes everything from the newest cached Device, under the device's
// interval and the budget, together with any reports pending for it.
func (w *DeviceReports) Touch(node string, name types.NamespacedName) {
	key := reportKey{node: node, NamespacedName: name}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.schedule(key, w.pendingFor(key))
}

// Apply takes one DeviceTwin or DeviceState report (reports.Applier). A body that cannot be
// read can never be applied: it is counted, logged and finished, so it does not block the
// node's outbox.
func (w *DeviceReports) Apply(_ context.Context, node string, r wire.Report, done func()) error {
	key := reportKey{node: node, NamespacedName: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}}
	var twin *wire.TwinReport
	var state *wire.StateReport
	var err error
	switch r.Kind {
	case wire.ReportKindDeviceTwin:
		twin = &wire.TwinReport{}
		if err = json.Unmarshal(r.Body, twin); err == nil && twin.Property == "" {
			err = errors.New("the report names no property")
		}
	case wire.ReportKindDeviceState:
		state = &wire.StateReport{}
		if err = json.Unmarshal(r.Body, state); err == nil && !wire.KnownDeviceState(state.State) {
			err = fmt.Errorf("unknown device state %q", state.State)
		}
	default:
		err = fmt.Errorf("not a device report kind: %q", r.Kind)
	}
	if err != nil {
		w.metrics.dropped.WithLabelValues("invalid").Inc()
		w.log.Error(err, "Dropping a device report that cannot be applied", "node", node, "device", key.String(), "seq", r.Seq)
		done()
		return nil
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pendingFor(key)
	if twin != nil {
		p.twins[twin.Property] = *twin
	}
	if state != nil {
		p.state = state
	}
	p.done = append(p.done, done)
	w.schedule(key, p)
	return nil
}

// pendingFor returns key's pending reports, creating them. Callers hold w.mu.
func (w *DeviceReports) pendingFor(key reportKey) *pendingReports {
	p, ok := w.pending[key]
	if !ok {
		p = &pendingReports{twins: map[string]wire.TwinReport{}, since: time.Now()}
		w.pending[key] = p
		w.metrics.pending.Set(float64(len(w.pending)))
	}
	return p
}

// schedule queues key's write for when its interval since the last write has passed. Callers
// hold w.mu.
func (w *DeviceReports) schedule(key reportKey, p *pendingReports) {
	if p.queued {
		return
	}
	p.queued = true
	w.queue.AddAfter(key, time.Until(w.lastWrite[key].Add(w.interval)))
}

// Start runs the writers until ctx ends (manager.Runnable). Reports still pending then are
// not acknowledged, so the edge sends them to the next cloudcore.
func (w *DeviceReports) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range w.workers {
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
	wg.Go(w.forgetIdle(ctx))
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// forgetIdle drops the last-write times of devices that have been quiet for a while, so the
// map does not grow with every device ever seen.
func (w *DeviceReports) forgetIdle(ctx context.Context) func() {
	return func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				w.mu.Lock()
				for k, t := range w.lastWrite {
					if now.Sub(t) > w.interval+time.Minute {
						delete(w.lastWrite, k)
						delete(w.written, k)
					}
				}
				w.mu.Unlock()
			}
		}
	}
}

// flush writes key's pending reports, or puts them back to be tried again.
func (w *DeviceReports) flush(ctx context.Context, key reportKey) {
	w.mu.Lock()
	// A report that arrived while this key's last write was in flight was scheduled from the
	// write before; hold it until the interval since the last write has passed.
	if wait := time.Until(w.lastWrite[key].Add(w.interval)); wait > 0 {
		if _, ok := w.pending[key]; ok {
			w.queue.AddAfter(key, wait)
		}
		w.mu.Unlock()
		return
	}
	p := w.pending[key]
	delete(w.pending, key)
	w.metrics.pending.Set(float64(len(w.pending)))
	// The reports of the device's recent writes go under the pending ones: the cache this write
	// is computed from may not have seen them yet.
	all := layered(w.written[key], p)
	w.mu.Unlock()
	if p == nil {
		return
	}
	if w.governor != nil {
		if err := w.governor.Wait(ctx); err != nil {
			w.putBack(key, p, 0)
			return
		}
	}
	if !w.limiter.Allow() {
		w.metrics.throttled.Inc()
		if err := w.limiter.Wait(ctx); err != nil {
			w.putBack(key, p, 0)
			return
		}
	}
	result, err := w.write(ctx, key, all)
	w.metrics.writes.WithLabelValues(result).Inc()
	if err != nil {
		retry := w.interval
		if apierrors.IsConflict(err) {
			retry = 50 * time.Millisecond // our cache is behind our own last write; it catches up at once
		} else {
			w.log.Error(err, "Writing device status; will retry", "device", key.String(), "node", key.node)
		}
		w.putBack(key, p, retry)
		return
	}
	now := time.Now()
	w.mu.Lock()
	w.lastWrite[key] = now
	w.remember(key, p)
	w.mu.Unlock()
	w.metrics.lag.Observe(now.Sub(p.since).Seconds())
	for _, done := range p.done {
		done()
	}
}

// remember records the reports of a landed write. Callers hold w.mu.
func (w *DeviceReports) remember(key reportKey, p *pendingReports) {
	if len(p.twins) > 0 || p.state != nil {
		w.written[key] = layered(w.written[key], p)
	}
}

// layered returns the reports of newer laid over those of older (either may be nil): each
// property's newer value wins, and the newer state if there is one. Callbacks and times are
// not carried.
func layered(older, newer *pendingReports) *pendingReports {
	all := &pendingReports{twins: map[string]wire.TwinReport{}}
	for _, r := range []*pendingReports{older, newer} {
		if r == nil {
			continue
		}
		maps.Copy(all.twins, r.twins)
		if r.state != nil {
			all.state = r.state
		}
	}
	return all
}

// putBack returns reports that could not be written to the pending set; reports that arrived
// meanwhile are newer and win.
func (w *DeviceReports) putBack(key reportKey, old *pendingReports, after time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pendingFor(key)
	merged := layered(old, p)
	p.twins, p.state = merged.twins, merged.state
	p.done = append(old.done, p.done...)
	p.since = old.since
	if !p.queued {
		p.queued = true
		w.queue.AddAfter(key, after)
	}
}

// write applies p to the device's status and patches it. It returns the result for the
// metrics; an error means nothing was written.
func (w *DeviceReports) write(ctx context.Context, key reportKey, p *pendingReports) (string, error) {
	// A write the controller asked for carries no reports; dropping it drops nothing.
	drop := func(reason string) {
		if len(p.twins) > 0 || p.state != nil {
			w.metrics.dropped.WithLabelValues(reason).Inc()
		}
	}
	dev := &v1alpha1.Device{}
	if err := w.client.Get(ctx, key.NamespacedName, dev); err != nil {
		if apierrors.IsNotFound(err) {
			drop("device-gone")
			return resultDropped, nil
		}
		return resultError, err
	}
	switch {
	case dev.DeletionTimestamp != nil:
		drop("device-gone")
		return resultDropped, nil
	case dev.Spec.NodeName != key.node:
		// Usually a device just moved and the old node reported before it learned; a node
		// reporting devices it never held is refused the same way. (The controller asks for
		// the moved device's write under its new node.)
		drop("not-on-node")
		w.log.V(1).Info("Dropping reports of a device that is not on the reporting node", "device", key.String(),
			"node", key.node, "deviceNode", dev.Spec.NodeName)
		return resultDropped, nil
	}
	before := dev.DeepCopy()
	applyReports(&dev.Status, dev.Generation, p)

	model := &v1alpha1.DeviceModel{}
	if err := w.client.Get(ctx, types.NamespacedName{Namespace: dev.Namespace, Name: dev.Spec.ModelRef.Name}, model); err != nil {
		if !apierrors.IsNotFound(err) {
			return resultError, err
		}
		model = nil
	}
	node := &v1alpha1.EdgeNode{}
	if err := w.client.Get(ctx, types.NamespacedName{Name: dev.Spec.NodeName}, node); err != nil {
		if !apierrors.IsNotFound(err) {
			return resultError, err
		}
		node = nil
	}
	computeDeviceStatus(dev, model, node)
	if equality.Semantic.DeepEqual(before.Status, dev.Status) {
		return resultUnchanged, nil
	}
	sent := time.Now()
	err := w.client.Status().Patch(ctx, dev, statusPatch{})
	if w.governor != nil {
		w.governor.Observe(time.Since(sent))
	}
	if err != nil {
		if apierrors.IsConflict(err) {
			return resultConflict, err
		}
		if apierrors.IsNotFound(err) {
			drop("device-gone")
			return resultDropped, nil
		}
		return resultError, err
	}
	return resultPatched, nil
}

// statusPatch replaces a Device's whole status, on condition that the object still has the
// UID it was computed for (a JSON patch: test the UID, then replace /status). It carries no
// resourceVersion, so it does not fail when a user patched the spec since the cache saw the
// device, which under a stream of spec changes refused nearly every write. That is safe
// because DeviceReports is the only writer of Device status and computes each write from the
// newest cache plus the reports of its own recent writes; a write computed from an older spec
// says so in observedGeneration, and the controller asks for another once the cache has the
// newer one. The UID test makes the API server refuse the write if the device was deleted and
// created again meanwhile (the status subresource ignores a UID in a merge patch).
type statusPatch struct{}

func (statusPatch) Type() types.PatchType { return types.JSONPatchType }

func (statusPatch) Data(obj client.Object) ([]byte, error) {
	dev, ok := obj.(*v1alpha1.Device)
	if !ok {
		return nil, fmt.Errorf("a Device status patch for a %T", obj)
	}
	return json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": dev.UID},
		{"op": "add", "path": "/status", "value": dev.Status},
	})
}

// applyReports puts reported values, the desired values the edge acknowledged, the mapper's
// state (the Reachable condition) and lastSeen into st. Twins stay sorted by property name, so the same reports give the same status.
func applyReports(st *v1alpha1.DeviceStatus, gen int64, p *pendingReports) {
	var newest int64
	for _, r := range p.twins {
		ts := metav1.NewMicroTime(time.UnixMilli(r.Timestamp))
		i := slices.IndexFunc(st.Twins, func(t v1alpha1.Twin) bool { return t.Name == r.Property })
		if i < 0 {
			st.Twins = append(st.Twins, v1alpha1.Twin{Name: r.Property})
			i = len(st.Twins) - 1
		}
		t := &st.Twins[i]
		t.Reported = &v1alpha1.TwinValue{Value: r.Value, Timestamp: &ts}
		t.Desired = nil
		if r.Desired != nil {
			t.Desired = &v1alpha1.TwinValue{Value: *r.Desired, Timestamp: &ts}
		}
		newest = max(newest, r.Timestamp)
	}
	slices.SortFunc(st.Twins, func(a, b v1alpha1.Twin) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	if s := p.state; s != nil {
		setReachable(st, gen, s.State, s.Timestamp)
		newest = max(newest, s.Timestamp)
	}
	if newest > 0 && (st.LastSeen == nil || st.LastSeen.UnixMilli() < newest) {
		seen := metav1.NewTime(time.UnixMilli(newest))
		st.LastSeen = &seen
	}
}

type reportMetrics struct {
	writes    *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	throttled prometheus.Counter
	pending   prometheus.Gauge
	budget    prometheus.Gauge
	lag       prometheus.Histogram
}

func newReportMetrics(reg prometheus.Registerer, qps float64) *reportMetrics {
	m := &reportMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgetwin_device_status_writes_total",
			Help: "Device status writes for edge reports, by result (patched, unchanged, conflict, error, dropped)."}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgetwin_device_reports_dropped_total",
			Help: "Device reports that cannot be applied, by reason (invalid, device-gone, not-on-node)."}, []string{"reason"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetwin_device_status_writes_throttled_total",
			Help: "Device status writes that waited for the global status-write budget."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetwin_device_reports_pending_devices",
			Help: "Devices with reports waiting for their status write."}),
		budget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetwin_device_status_write_budget_per_second",
			Help: "The global budget of device status writes per second (--status-write-qps)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edgetwin_device_report_lag_seconds",
			Help:    "Time from a report reaching cloudcore to the status write that carries it.",
			Buckets: []float64{.05, .1, .25, .5, 1, 1.5, 2, 3, 5, 10, 30, 60}}),
	}
	m.budget.Set(qps)
	if reg != nil {
		reg.MustRegister(m.writes, m.dropped, m.throttled, m.pending, m.budget, m.lag)
	}
	return m
}
