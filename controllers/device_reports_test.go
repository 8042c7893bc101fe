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
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// edgeReport builds a report as edgecore's DeviceTwin queues it.
func twinReport(t *testing.T, dev *v1alpha1.Device, seq uint64, prop, value string, desired *string, at time.Time) wire.Report {
	t.Helper()
	body, err := json.Marshal(wire.TwinReport{Property: prop, Value: value, Timestamp: at.UnixMilli(), Desired: desired,
		Synced: desired != nil && *desired == value})
	if err != nil {
		t.Fatal(err)
	}
	return wire.Report{Seq: seq, Kind: wire.ReportKindDeviceTwin, Namespace: dev.Namespace, Name: dev.Name, Body: body}
}

func stateReport(t *testing.T, dev *v1alpha1.Device, seq uint64, state string, at time.Time) wire.Report {
	t.Helper()
	body, err := json.Marshal(wire.StateReport{State: state, Timestamp: at.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return wire.Report{Seq: seq, Kind: wire.ReportKindDeviceState, Namespace: dev.Namespace, Name: dev.Name, Body: body}
}

// apply hands reports to w as the router would, counting the reports it finished.
func apply(t *testing.T, w *DeviceReports, node string, finished *atomic.Int64, reps ...wire.Report) {
	t.Helper()
	for _, r := range reps {
		if err := w.Apply(context.Background(), node, r, func() { finished.Add(1) }); err != nil {
			t.Fatalf("Apply(%d): %v", r.Seq, err)
		}
	}
}

// twinsOf returns "name=reported/desired" for each twin of dev, as stored.
func twinsOf(dev *v1alpha1.Device) func() []string {
	return func() []string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); err != nil {
			return []string{err.Error()}
		}
		out := []string{}
		for _, tw := range dev.Status.Twins {
			s := tw.Name + "="
			if tw.Reported != nil {
				s += tw.Reported.Value
			}
			if tw.Desired != nil {
				s += "/" + tw.Desired.Value
			}
			out = append(out, s)
		}
		return out
	}
}

// statusPatches returns how many PATCH requests on devices/status the API server has served,
// from its own apiserver_request_total: the writes as the API server counts them.
func statusPatches(t *testing.T) float64 {
	t.Helper()
	reqs, err := controlplane.NewRequests(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := reqs.Count(context.Background(), "PATCH", "devices", "status")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// connectedNode creates an EdgeNode whose agent is connected.
func connectedNode(t *testing.T) string {
	t.Helper()
	node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: uniqueNode()}}
	create(t, node)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), node) })
	setConnected(t, node, true)
	return node.Name
}

func TestEdgeReportsLandInTheDeviceStatus(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node := connectedNode(t)
	dev := thermostat(ns, "d1", node, "22")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/"))

	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var finished atomic.Int64
	apply(t, deviceReports, node, &finished,
		twinReport(t, dev, 1, "temperature", "20.5", nil, at),
		twinReport(t, dev, 2, "setpoint", "22.0", new("22"), at.Add(time.Second)),
		stateReport(t, dev, 3, wire.DeviceStateOK, at.Add(2*time.Second)))

	eventually(t, twinsOf(dev)).Should(gomega.Equal([]string{"setpoint=22.0/22", "temperature=20.5"}))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(3))
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.HavePrefix("True/Synced"))
	eventually(t, condition(dev, v1alpha1.ConditionReady)).Should(gomega.HavePrefix("True/Ready"))
	if dev.Status.State != v1alpha1.DeviceStateOnline {
		t.Errorf("state = %q, want Online (the mapper said ok)", dev.Status.State)
	}
	if dev.Status.LastSeen == nil || !dev.Status.LastSeen.Time.Equal(at.Add(2*time.Second)) {
		t.Errorf("lastSeen = %v, want the newest edge timestamp %v", dev.Status.LastSeen, at.Add(2*time.Second))
	}
	if ts := dev.Status.Twins[1].Reported.Timestamp; ts == nil || !ts.Time.Equal(at) {
		t.Errorf("temperature's timestamp = %v, want the edge's %v", ts, at)
	}

	// A later report wins even if the edge's clock stepped back in between: order is the
	// report sequence, not the clock.
	apply(t, deviceReports, node, &finished, twinReport(t, dev, 4, "temperature", "21", nil, at.Add(-time.Hour)))
	eventually(t, twinsOf(dev)).Should(gomega.Equal([]string{"setpoint=22.0/22", "temperature=21"}))

	if got := condition(dev, v1alpha1.ConditionReachable)(); got != `True/StateReported: the mapper reported "ok" at 2026-11-27T10:00:02Z (edge time)` {
		t.Errorf("Reachable = %q", got)
	}
	// The mapper says the device went offline.
	apply(t, deviceReports, node, &finished, stateReport(t, dev, 5, wire.DeviceStateOffline, at.Add(3*time.Second)))
	eventually(t, condition(dev, v1alpha1.ConditionReady)).Should(gomega.Equal("False/NotReady: not yet: Reachable"))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(5))
}

func TestReportsOfADeviceOnAnotherNodeAreDropped(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	dev := thermostat(ns, "d1", uniqueNode(), "22")
	create(t, dev)
	var finished atomic.Int64
	apply(t, deviceReports, "some-other-node", &finished,
		twinReport(t, dev, 1, "temperature", "99", nil, time.Now()),
		stateReport(t, dev, 2, wire.DeviceStateOnline, time.Now()))
	// Finished (so the reporting node's outbox does not stall on them), and never written.
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(2))
	gomega.NewWithT(t).Consistently(twinsOf(dev)).WithTimeout(1500 * time.Millisecond).Should(gomega.BeEmpty())
	if dev.Status.State == v1alpha1.DeviceStateOnline {
		t.Error("another node's report set the device Online")
	}
}

func TestAnUnreadableReportIsFinishedWithoutAWrite(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node := uniqueNode()
	dev := thermostat(ns, "d1", node, "22")
	create(t, dev)
	var finished atomic.Int64
	for i, body := range []string{`{"property":`, `{"value":"1"}`, `{"state":"exploded","timestamp":1}`} {
		kind := wire.ReportKindDeviceTwin
		if strings.Contains(body, "state") {
			kind = wire.ReportKindDeviceState
		}
		apply(t, deviceReports, node, &finished, wire.Report{Seq: uint64(i + 1), Kind: kind, Namespace: ns, Name: "d1", Body: json.RawMessage(body)})
	}
	if finished.Load() != 3 {
		t.Fatalf("finished %d of 3 unreadable reports at once", finished.Load())
	}
	gomega.NewWithT(t).Consistently(twinsOf(dev)).WithTimeout(time.Second).Should(gomega.BeEmpty())
}

func TestAChattyDeviceIsWrittenOncePerInterval(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node := connectedNode(t)
	dev := thermostat(ns, "d1", node, "22")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/"))
	time.Sleep(500 * time.Millisecond) // let the controllers' own writes for the new device settle

	const reports = 150
	before := statusPatches(t)
	start := time.Now()
	var finished atomic.Int64
	for i := 1; i <= reports; i++ {
		apply(t, deviceReports, node, &finished, twinReport(t, dev, uint64(i), "temperature", strconv.Itoa(i), nil, time.Now()))
		time.Sleep(20 * time.Millisecond)
	}
	// The newest value lands, and every report is finished (acknowledged to the edge) with it.
	eventually(t, twinsOf(dev)).Should(gomega.Equal([]string{fmt.Sprintf("temperature=%d", reports)}))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(reports))
	elapsed := time.Since(start)
	writes := statusPatches(t) - before

	// At most one write per started interval (1 s), plus one for the first report and a little
	// slack for the Device controller's own condition writes.
	limit := elapsed.Seconds()/DefaultStatusInterval.Seconds() + 1 + 2
	t.Logf("%d reports in %s: the API server served %.0f status patches (limit %.1f)", reports, elapsed.Round(time.Millisecond), writes, limit)
	if writes > limit {
		t.Fatalf("%.0f status patches for %d reports in %s; the budget allows %.1f", writes, reports, elapsed, limit)
	}
	if writes < 2 {
		t.Fatalf("%.0f status patches: the reports were not written as they came (want one per interval)", writes)
	}
}

func TestTheGlobalBudgetBoundsTheWritesOfAllDevices(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node := connectedNode(t)
	const devices, qps = 8, 4.0
	devs := make([]*v1alpha1.Device, devices)
	for i := range devs {
		devs[i] = thermostat(ns, fmt.Sprintf("d%d", i), node, "22")
		create(t, devs[i])
	}
	for _, d := range devs {
		eventually(t, condition(d, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/"))
	}
	time.Sleep(500 * time.Millisecond)

	// A writer of its own with a small budget: 4 writes/s in all, bursts of 1, 100 ms per device.
	w := startWriter(t, mgrClient, ReportsOptions{Interval: 100 * time.Millisecond, QPS: qps, Burst: 1, Log: logr.Discard()})

	before := statusPatches(t)
	start := time.Now()
	var finished atomic.Int64
	seq := uint64(0)
	for round := 1; round <= 10; round++ {
		for _, d := range devs {
			seq++
			apply(t, w, node, &finished, twinReport(t, d, seq, "temperature", strconv.Itoa(round), nil, time.Now()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range devs {
		eventually(t, twinsOf(d)).Should(gomega.Equal([]string{"temperature=10"}))
	}
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(10 * devices))
	elapsed := time.Since(start)
	writes := statusPatches(t) - before
	limit := 1 + qps*elapsed.Seconds() + 2
	t.Logf("%d devices × 10 reports in %s: the API server served %.0f status patches (budget %.1f)", devices, elapsed.Round(time.Millisecond), writes, limit)
	if writes > limit {
		t.Fatalf("%.0f status patches in %s; the global budget of %.0f/s allows %.1f", writes, elapsed, qps, limit)
	}
	if writes < devices {
		t.Fatalf("%.0f status patches for %d devices; each device's newest value needs one", writes, devices)
	}
}
