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

package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/client/clientset/versioned"
)

// DeviceNamespace holds the benchmarks' devices.
const DeviceNamespace = "bench"

// connectedNodes counts the EdgeNodes whose name starts with prefix and whose Connected
// condition is True, as the API server has them.
func connectedNodes(ctx context.Context, e *Env, prefix string) (int, error) {
	var list v1alpha1.EdgeNodeList
	if err := e.Client.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		node := &list.Items[i]
		if strings.HasPrefix(node.Name, prefix) && meta.IsStatusConditionTrue(node.Status.Conditions, v1alpha1.ConditionConnected) {
			n++
		}
	}
	return n, nil
}

// ConnectStorm connects n hollow nodes at once and measures the time until every one is
// Connected in the API server and synced at the edge, and what it cost cloudcore. The fleet is
// returned connected, for the scenarios that follow.
func ConnectStorm(ctx context.Context, e *Env, n int) (*Result, *Fleet, error) {
	r := newResult("connect-storm", map[string]any{paramNodes: n})
	setup := time.Now()
	f, err := NewFleet(ctx, e, "hollow", n)
	if err != nil {
		return nil, nil, err
	}
	r.add("setup: EdgeNodes, keys and certificates", time.Since(setup).Seconds(), "s")
	before, err := ReadProc(e.CloudcorePID())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	start := time.Now()
	f.Start(ctx)
	var synced time.Duration
	err = waitUntil(ctx, 2*time.Minute+time.Duration(n)*20*time.Millisecond, time.Second/4, func() bool {
		if synced == 0 && f.Synced() == n {
			synced = time.Since(start)
		}
		c, err := connectedNodes(ctx, e, "hollow-")
		return err == nil && c == n && synced != 0
	})
	all := time.Since(start)
	if err != nil {
		c, _ := connectedNodes(ctx, e, "hollow-")
		r.Lost = n - c
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d nodes Connected, %d synced, when the wait ended", c, n, f.Synced()))
	}
	after, perr := ReadProc(e.CloudcorePID())
	if perr != nil {
		f.Close()
		return nil, nil, perr
	}
	r.add("all nodes synced at the edge", synced.Seconds(), "s")
	r.add("all EdgeNodes Connected in the API server", all.Seconds(), "s")
	r.add("cloudcore CPU during the storm", after.CPUSeconds-before.CPUSeconds, "CPU-s")
	r.add("cloudcore peak RSS", float64(after.PeakBytes)/(1<<20), "MiB")
	r.add("dials (connection attempts)", float64(f.Dials()), "")
	return r, f, nil
}

// Idle measures a connected fleet doing nothing for d: cloudcore's CPU and memory and the
// bytes on each node's link.
func Idle(ctx context.Context, e *Env, f *Fleet, d time.Duration) (*Result, error) {
	n := len(f.Nodes)
	r := newResult("idle", map[string]any{paramNodes: n, paramSeconds: d.Seconds()})
	in0, out0 := f.Traffic()
	p0, err := ReadProc(e.CloudcorePID())
	if err != nil {
		return nil, err
	}
	w0, err := nodeWrites(ctx, e)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	in1, out1 := f.Traffic()
	p1, err := ReadProc(e.CloudcorePID())
	if err != nil {
		return nil, err
	}
	w1, err := nodeWrites(ctx, e)
	if err != nil {
		return nil, err
	}
	perNode := float64(in1-in0+out1-out0) / float64(n) / d.Seconds()
	r.add("cloudcore CPU", (p1.CPUSeconds-p0.CPUSeconds)/d.Seconds()*100, "% of a core")
	r.add("cloudcore RSS", float64(p1.RSSBytes)/(1<<20), "MiB")
	r.add("link bytes per node per second (both ways, TLS)", perNode, "B/s")
	r.add("link per node", perNode*8/1000, "kbit/s")
	// The Node objects and their Leases spend the shared status-write budget (100/s unless
	// --status-write-qps says otherwise): right after a storm the writer is still working off the
	// fleet's first Node, status and Lease writes, so this shows the budget holding, not idling.
	r.add("Node and Lease writes (API server's count)", (w1-w0)/d.Seconds(), "writes/s")
	if s := f.Synced(); s != n {
		r.Lost = n - s
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d nodes lost their session while idle", n-s, n))
	}
	return r, nil
}

// Devices creates d devices spread over the fleet's nodes, with a model whose setpoint takes
// any number, and waits until every node holds its devices.
func Devices(ctx context.Context, e *Env, f *Fleet, d int) ([]types.NamespacedName, error) {
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DeviceNamespace}}); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		return nil, err
	}
	model := &v1alpha1.DeviceModel{ObjectMeta: metav1.ObjectMeta{Namespace: DeviceNamespace, Name: "thermostat"},
		Spec: v1alpha1.DeviceModelSpec{Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: setpoint, Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite},
			{Name: "temperature", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadOnly},
		}}}
	if err := e.Client.Create(ctx, model); err != nil && !strings.Contains(err.Error(), "already exists") {
		return nil, err
	}
	names := make([]types.NamespacedName, d)
	if err := parallel(ctx, d, 16, func(i int) error {
		dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: DeviceNamespace, Name: fmt.Sprintf("d-%d", i)},
			Spec: v1alpha1.DeviceSpec{ModelRef: v1alpha1.ModelReference{Name: "thermostat"}, NodeName: f.Nodes[i%len(f.Nodes)].Name,
				Properties: []v1alpha1.DeviceProperty{{Name: setpoint, Desired: new("0")}}}}
		names[i] = client.ObjectKeyFromObject(dev)
		return e.Client.Create(ctx, dev)
	}); err != nil {
		return nil, err
	}
	err := waitUntil(ctx, 2*time.Minute+time.Duration(d)*10*time.Millisecond, time.Second/4, func() bool {
		seen := map[string]bool{}
		for _, a := range f.Arrivals() {
			seen[a.Device] = true
		}
		return len(seen) >= d
	})
	if err != nil {
		return nil, fmt.Errorf("not every device reached its node: %w", err)
	}
	return names, nil
}

// FanOut patches desired setpoints at rate per second for d, spread over the devices, and
// measures the time from each patch to the hollow node storing the new value.
func FanOut(ctx context.Context, e *Env, f *Fleet, devices []types.NamespacedName, rate int, d time.Duration) (*Result, error) {
	r := newResult("desired-fan-out (hollow nodes)", map[string]any{paramNodes: len(f.Nodes), paramDevices: len(devices),
		"patches_per_second": rate, paramSeconds: d.Seconds()})
	type key struct{ device, value string }
	var mu sync.Mutex
	sent := map[key]time.Time{}
	total := int(float64(rate) * d.Seconds())
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := range total {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		dev := devices[i%len(devices)]
		value := strconv.Itoa(i + 1)
		wg.Go(func() {
			patch := fmt.Appendf(nil, `{"spec":{"properties":[{"name":"setpoint","desired":%q}]}}`, value)
			mu.Lock()
			sent[key{dev.String(), value}] = time.Now()
			mu.Unlock()
			obj := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: dev.Namespace, Name: dev.Name}}
			if err := e.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, fmt.Errorf("patching a device: %w", err)
	}
	arrived := func() map[key]time.Time {
		got := map[key]time.Time{}
		for _, a := range f.Arrivals() {
			k := key{a.Device, a.Value}
			if _, ok := got[k]; !ok {
				got[k] = a.At
			}
		}
		return got
	}
	_ = waitUntil(ctx, 30*time.Second, 100*time.Millisecond, func() bool { return len(arrived()) >= len(sent)+len(devices) })
	got := arrived()
	lat := make([]time.Duration, 0, len(sent))
	for k, at := range sent {
		if a, ok := got[k]; ok {
			lat = append(lat, a.Sub(at))
		} else {
			r.Lost++
		}
	}
	r.addLatencies("patch → hollow edge stored", lat)
	return r, nil
}

// statusWatch records when each reported value of each device first shows in Device.status.
type statusWatch struct {
	mu   sync.Mutex
	seen map[string]map[string]time.Time // device → value → first seen
	last map[string]string               // device → latest reported value seen
}

func watchStatus(ctx context.Context, e *Env, property string) (*statusWatch, error) {
	cs, err := versioned.NewForConfig(e.Config)
	if err != nil {
		return nil, err
	}
	devices := cs.EdgetwinV1alpha1().Devices(DeviceNamespace)
	w, err := devices.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	sw := &statusWatch{seen: map[string]map[string]time.Time{}, last: map[string]string{}}
	go func() {
		// A watch the API server or the connection ends is opened again: a run once saw no
		// status at all while 117 writes/s landed. A new watch starts with every device as it
		// is now, so the newest values are never missed; values that landed in the gap count
		// from when the new watch saw them (later, never earlier). It gives up once the API
		// server has refused a watch for 10 s (the scenario's control plane is gone).
		for cur := w; cur != nil; {
			sw.consume(cur, property)
			cur.Stop()
			cur = nil
			for deadline := time.Now().Add(10 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); {
				if next, err := devices.Watch(ctx, metav1.ListOptions{}); err == nil {
					cur = next
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return sw, nil
}

// consume records the property's reported values from w's events until it ends.
func (sw *statusWatch) consume(w watch.Interface, property string) {
	for ev := range w.ResultChan() {
		at := time.Now()
		dev, ok := ev.Object.(*v1alpha1.Device)
		if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
			continue
		}
		for _, tw := range dev.Status.Twins {
			if tw.Name != property || tw.Reported == nil {
				continue
			}
			sw.mu.Lock()
			m := sw.seen[dev.Name]
			if m == nil {
				m = map[string]time.Time{}
				sw.seen[dev.Name] = m
			}
			if _, ok := m[tw.Reported.Value]; !ok {
				m[tw.Reported.Value] = at
			}
			sw.last[dev.Name] = tw.Reported.Value
			sw.mu.Unlock()
		}
	}
}

func (sw *statusWatch) lastOf(device string) string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.last[device]
}

func (sw *statusWatch) firstSeen(device, value string) (time.Time, bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	t, ok := sw.seen[device][value]
	return t, ok
}

// reporter makes every device report a new temperature every interval, as mappers would.
type reporter struct {
	mu   sync.Mutex
	sent map[string]map[string]time.Time // device → value → when queued
	last map[string]string
	errs int
}

func startReporter(ctx context.Context, f *Fleet, devices []types.NamespacedName, interval time.Duration) (*reporter, func()) {
	rep := &reporter{sent: map[string]map[string]time.Time{}, last: map[string]string{}}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	byNode := map[int][]int{}
	for i := range devices {
		byNode[i%len(f.Nodes)] = append(byNode[i%len(f.Nodes)], i)
	}
	for nodeIdx, devs := range byNode {
		nd := f.Nodes[nodeIdx]
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for k := 1; ; k++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for _, i := range devs {
					dev := devices[i]
					value := strconv.Itoa(k)
					at := time.Now()
					err := nd.Report(dev.Namespace, dev.Name, "temperature", value, at)
					rep.mu.Lock()
					if err != nil {
						rep.errs++
					} else {
						if rep.sent[dev.Name] == nil {
							rep.sent[dev.Name] = map[string]time.Time{}
						}
						rep.sent[dev.Name][value] = at
						rep.last[dev.Name] = value
					}
					rep.mu.Unlock()
				}
			}
		})
	}
	return rep, func() { cancel(); wg.Wait() }
}

// settle waits until every device's status shows the last value its reporter queued, and
// returns how many do not.
func settle(ctx context.Context, rep *reporter, sw *statusWatch, timeout time.Duration) int {
	missing := func() int {
		rep.mu.Lock()
		defer rep.mu.Unlock()
		n := 0
		for dev, v := range rep.last {
			if sw.lastOf(dev) != v {
				n++
			}
		}
		return n
	}
	_ = waitUntil(ctx, timeout, 200*time.Millisecond, func() bool { return missing() == 0 })
	return missing()
}

// latencies pairs each value that landed with when it was queued.
func (rep *reporter) latencies(sw *statusWatch) []time.Duration {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	var out []time.Duration
	for dev, values := range rep.sent {
		for v, at := range values {
			if seen, ok := sw.firstSeen(dev, v); ok {
				out = append(out, seen.Sub(at))
			}
		}
	}
	return out
}

// Reported makes every device report every interval for d and measures the time from a report
// being queued at the edge to its value in Device.status, and the API server's status writes.
// Intermediate values may be coalesced away (by design); the newest value of every device must land.
func Reported(ctx context.Context, e *Env, f *Fleet, devices []types.NamespacedName, interval, d time.Duration) (*Result, error) {
	rate := float64(len(devices)) / interval.Seconds()
	r := newResult("reported-path", map[string]any{paramNodes: len(f.Nodes), paramDevices: len(devices),
		"reports_per_second": rate, paramSeconds: d.Seconds()})
	sw, err := watchStatus(ctx, e, "temperature")
	if err != nil {
		return nil, err
	}
	// The controllers may still be writing the conditions of an earlier scenario's spec changes;
	// those writes are not the reports' and would blur the write rate.
	if err := quiesce(ctx, e); err != nil {
		return nil, err
	}
	w0, err := e.APIServerWrites(ctx, "PATCH", "devices", "status")
	if err != nil {
		return nil, err
	}
	c0, err := e.APIServerWrites(ctx, "PATCH", "devices", "status", "409")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep, stop := startReporter(ctx, f, devices, interval)
	select {
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	case <-time.After(d):
	}
	stop()
	elapsed := time.Since(start)
	w1, err := e.APIServerWrites(ctx, "PATCH", "devices", "status")
	if err != nil {
		return nil, err
	}
	c1, err := e.APIServerWrites(ctx, "PATCH", "devices", "status", "409")
	if err != nil {
		return nil, err
	}
	r.Lost = settle(ctx, rep, sw, time.Minute)
	if r.Lost > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d devices never showed their newest value", r.Lost))
	}
	if rep.errs > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d reports could not be queued at the edge", rep.errs))
	}
	r.addLatencies("report queued → Device.status", rep.latencies(sw))
	r.add("API server devices/status PATCH", (w1-w0)/elapsed.Seconds(), "writes/s")
	r.add("  of which refused as conflicts (409)", (c1-c0)/elapsed.Seconds(), "writes/s")
	return r, nil
}

// ReconnectStorm restarts cloudcore under a connected fleet whose devices keep reporting, and
// measures the time until every node is back and synced; every device's newest value must land.
func ReconnectStorm(ctx context.Context, e *Env, f *Fleet, devices []types.NamespacedName) (*Result, error) {
	n := len(f.Nodes)
	r := newResult("reconnect-storm", map[string]any{paramNodes: n, paramDevices: len(devices)})
	sw, err := watchStatus(ctx, e, "temperature")
	if err != nil {
		return nil, err
	}
	rep, stop := startReporter(ctx, f, devices, time.Second)
	time.Sleep(2 * time.Second)
	e.StopCloudcore()
	down := time.Now()
	time.Sleep(3 * time.Second) // reports keep being queued at the edge meanwhile
	if err := e.StartCloudcore(ctx); err != nil {
		stop()
		return nil, err
	}
	restarted := time.Now()
	err = waitUntil(ctx, 2*time.Minute+time.Duration(n)*20*time.Millisecond, time.Second/4, func() bool {
		if f.Synced() != n {
			return false
		}
		c, err := connectedNodes(ctx, e, "hollow-")
		return err == nil && c == n
	})
	back := time.Since(restarted)
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d nodes synced when the wait ended", f.Synced(), n))
	}
	time.Sleep(2 * time.Second)
	stop()
	r.Lost = settle(ctx, rep, sw, 2*time.Minute)
	if r.Lost > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d devices never showed their newest value", r.Lost))
	}
	r.add("cloudcore down", restarted.Sub(down).Seconds(), "s")
	r.add("restart → every node synced and Connected", back.Seconds(), "s")
	r.add("reports queued", float64(countSent(rep)), "")
	return r, nil
}

func countSent(rep *reporter) int {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	n := 0
	for _, v := range rep.sent {
		n += len(v)
	}
	return n
}

// quiesce waits until the API server has served no devices/status write for two seconds.
func quiesce(ctx context.Context, e *Env) error {
	last, err := e.APIServerWrites(ctx, "PATCH", "devices", "status")
	if err != nil {
		return err
	}
	still := 0
	return waitUntil(ctx, 5*time.Minute, time.Second, func() bool {
		now, err := e.APIServerWrites(ctx, "PATCH", "devices", "status")
		if err != nil {
			return false
		}
		if now == last {
			still++
		} else {
			still, last = 0, now
		}
		return still >= 2
	})
}

// nodeWrites is the API server's count of the writes that keep edge Nodes: Node creation and
// metadata, Node status, and Lease creation and renewal (the API server's own identity Lease
// renewals, one every 10 s, are counted too).
func nodeWrites(ctx context.Context, e *Env) (float64, error) {
	var total float64
	const nodes, leases = "nodes", "leases" // API resources
	for _, q := range [][3]string{{"POST", nodes, ""}, {"PATCH", nodes, ""}, {"PATCH", nodes, "status"},
		{"POST", leases, ""}, {"PUT", leases, ""}} {
		n, err := e.APIServerWrites(ctx, q[0], q[1], q[2])
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
