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
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
)

// These tests are about DeviceReports as the one writer of Device status: the controller's
// derived status goes through it, and its writes hold no optimistic lock.

// connectedThermostat creates a thermostat on a connected node in a namespace of its own, and
// waits for its conditions.
func connectedThermostat(t *testing.T) (dev *v1alpha1.Device, node string) {
	t.Helper()
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node = connectedNode(t)
	dev = thermostat(ns, "d1", node, "22")
	create(t, dev)
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/"))
	return dev, node
}

// startWriter runs a DeviceReports of the test's own over c until the test ends.
func startWriter(t *testing.T, c client.Client, opts ReportsOptions) *DeviceReports {
	t.Helper()
	w := NewDeviceReports(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = w.Start(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return w
}

func TestTheControllersStatusIsWrittenByTheOneWriter(t *testing.T) {
	ns := newNamespace(t)
	create(t, thermostatModel(ns))
	node := connectedNode(t)
	patched := func() float64 { return testutil.ToFloat64(deviceReports.metrics.writes.WithLabelValues(resultPatched)) }
	before := patched()

	dev := thermostat(ns, "d1", node, "22")
	create(t, dev)
	// No report was applied: the conditions can only have been written by the controller's
	// request to the writer.
	eventually(t, condition(dev, v1alpha1.ConditionNodeConnected)).Should(gomega.HavePrefix("True/"))
	// The writer counts a write once the API server has answered it, which can be after this
	// test saw the status: wait for the count, not only the status.
	eventually(t, func() float64 { return patched() - before }).Should(gomega.BeNumerically(">=", 1),
		"the device's conditions were written, but not by DeviceReports")

	// A spec change makes the controller ask again: observedGeneration follows.
	if err := k8s.Patch(context.Background(), dev, client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"properties":[{"name":"setpoint","desired":"23"}]}}`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() int64 {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev)
		return dev.Status.ObservedGeneration - dev.Generation
	}).Should(gomega.BeZero())
	eventually(t, condition(dev, v1alpha1.ConditionSynced)).Should(gomega.HavePrefix("False/" + v1alpha1.ReasonAwaitingReport))
}

// A user patching a device's spec several times a second used to refuse nearly every status
// write as a conflict (the optimistic lock on a resourceVersion the spec patches kept moving).
func TestReportsLandWhileTheSpecKeepsChanging(t *testing.T) {
	dev, node := connectedThermostat(t)

	// The suite's writer, the one the Device controller asks for its writes too: a second writer
	// of the same status (as this test once had) can put back what the other wrote from a cache
	// that had not seen it, which cloudcore never does (one DeviceReports for both). A report a
	// little over each interval apart makes each its own write, raced by the spec patches.
	w := deviceReports
	conflictsBefore := testutil.ToFloat64(w.metrics.writes.WithLabelValues(resultConflict))
	patchedBefore := testutil.ToFloat64(w.metrics.writes.WithLabelValues(resultPatched))

	const rounds = 8
	var spec sync.WaitGroup
	stop := make(chan struct{})
	var specPatches atomic.Int64
	spec.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			patch := fmt.Appendf(nil, `{"spec":{"properties":[{"name":"setpoint","desired":"%d"}]}}`, 30+i%10)
			if err := k8s.Patch(context.Background(), &v1alpha1.Device{ObjectMeta: dev.ObjectMeta}, client.RawPatch(types.MergePatchType, patch)); err == nil {
				specPatches.Add(1)
			}
		}
	})
	var finished atomic.Int64
	for i := 1; i <= rounds; i++ {
		apply(t, w, node, &finished, twinReport(t, dev, uint64(i), "temperature", strconv.Itoa(i), nil, time.Now()))
		time.Sleep(DefaultStatusInterval + 100*time.Millisecond)
	}
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(rounds))
	close(stop)
	spec.Wait()

	eventually(t, twinsOf(dev)).Should(gomega.ContainElement(fmt.Sprintf("temperature=%d", rounds)))
	conflicts := testutil.ToFloat64(w.metrics.writes.WithLabelValues(resultConflict)) - conflictsBefore
	patched := testutil.ToFloat64(w.metrics.writes.WithLabelValues(resultPatched)) - patchedBefore
	t.Logf("%d spec patches during %d reports: %v status writes, %v conflicts", specPatches.Load(), rounds, patched, conflicts)
	if specPatches.Load() < rounds {
		t.Fatalf("only %d spec patches ran alongside the reports; the test did not race them", specPatches.Load())
	}
	if conflicts != 0 {
		t.Fatalf("%v status writes were refused as conflicts while the spec changed", conflicts)
	}
	// The controller brings the derived status up to the last spec once the patches stop.
	eventually(t, func() int64 {
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev)
		return dev.Status.ObservedGeneration - dev.Generation
	}).Should(gomega.BeZero())
}

// staleReader serves a Device from a snapshot once frozen, as a cache that has not yet seen
// the writer's own last write would.
type staleReader struct {
	client.Client
	mu     sync.Mutex
	frozen *v1alpha1.Device
}

func (s *staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	s.mu.Lock()
	frozen := s.frozen
	s.mu.Unlock()
	if dev, ok := obj.(*v1alpha1.Device); ok && frozen != nil && key == client.ObjectKeyFromObject(frozen) {
		frozen.DeepCopyInto(dev)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

func TestAWriteFromAStaleCacheKeepsTheValuesOfEarlierWrites(t *testing.T) {
	dev, node := connectedThermostat(t)

	reader := &staleReader{Client: mgrClient}
	w := startWriter(t, reader, ReportsOptions{Interval: 10 * time.Millisecond, Log: logr.Discard()})

	// The cache stops here, before either write: it never sees the temperature.
	snapshot := &v1alpha1.Device{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), snapshot); err != nil {
		t.Fatal(err)
	}
	reader.mu.Lock()
	reader.frozen = snapshot
	reader.mu.Unlock()

	var finished atomic.Int64
	apply(t, w, node, &finished, twinReport(t, dev, 1, "temperature", "21.5", nil, time.Now()))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(1))
	eventually(t, twinsOf(dev)).Should(gomega.Equal([]string{"temperature=21.5"}))

	// The second write is computed from the stale snapshot; it must still carry the first's value.
	apply(t, w, node, &finished, twinReport(t, dev, 2, "setpoint", "22", new("22"), time.Now()))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(2))
	eventually(t, twinsOf(dev)).Should(gomega.Equal([]string{"setpoint=22/22", "temperature=21.5"}))
}

func TestAStatusWriteForAnEarlierDeviceOfTheSameNameChangesNothing(t *testing.T) {
	dev, _ := connectedThermostat(t)
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); err != nil {
		t.Fatal(err)
	}
	stale := dev.DeepCopy()
	stale.UID = types.UID("00000000-0000-0000-0000-000000000000")
	stale.Status.State = v1alpha1.DeviceStateOffline
	stale.Status.Twins = []v1alpha1.Twin{{Name: "temperature", Reported: &v1alpha1.TwinValue{Value: "99"}}}
	if err := k8s.Status().Patch(context.Background(), stale, statusPatch{}); err == nil {
		t.Fatal("a status patch bound to another UID was accepted")
	}
	got := &v1alpha1.Device{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(dev), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.State != dev.Status.State || len(got.Status.Twins) != 0 || got.UID != dev.UID {
		t.Fatalf("the refused patch changed the device: state %q, twins %v", got.Status.State, got.Status.Twins)
	}
}

// The writer times its patches for the governor, and waits for it before each write.
func TestTheWriterFeedsTheGovernor(t *testing.T) {
	dev, node := connectedThermostat(t)

	// Every write is slower than a nanosecond: each window with writes halves the rate.
	gov := statuswrite.NewGovernor(statuswrite.GovernorOptions{Max: 100, Burst: 1, Target: time.Nanosecond})
	w := startWriter(t, mgrClient, ReportsOptions{Interval: 10 * time.Millisecond, Governor: gov, Log: logr.Discard()})

	var finished atomic.Int64
	apply(t, w, node, &finished, twinReport(t, dev, 1, "temperature", "20", nil, time.Now()))
	eventually(t, finished.Load).Should(gomega.BeEquivalentTo(1))
	gov.Adjust()
	if got := gov.Limit(); got != 50 {
		t.Fatalf("after a window with a slow write the governor allows %v/s, want 50", got)
	}
	gov.Adjust() // a window without writes gives back a tenth
	if got := gov.Limit(); got != 60 {
		t.Fatalf("after a quiet window the governor allows %v/s, want 60", got)
	}
}
