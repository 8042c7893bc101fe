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

package agent

import (
	"testing"

	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

type recorder struct{ stored, deleted []wire.Kind }

func (r *recorder) ObjectStored(ref wire.ObjectRef, _ []byte) { r.stored = append(r.stored, ref.Kind) }
func (r *recorder) ObjectDeleted(ref wire.ObjectRef)          { r.deleted = append(r.deleted, ref.Kind) }

func TestListenerRoutesByKind(t *testing.T) {
	cases := []struct {
		kind       wire.Kind
		toDevices  bool
		toWorkload bool
	}{
		{wire.KindDevice, true, false},
		{wire.KindPod, false, true},
		{wire.KindConfigMap, false, true},
		{wire.KindSecret, false, true},
		{wire.KindServiceAccountToken, false, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind)+" goes where it belongs", func(t *testing.T) {
			devices, workloads := &recorder{}, &recorder{}
			l := listener{devices: devices, pods: workloads}
			ref := wire.ObjectRef{Kind: tc.kind, Namespace: "ns", Name: "n"}
			l.ObjectStored(ref, nil)
			l.ObjectDeleted(ref)
			if got := len(devices.stored) == 1 && len(devices.deleted) == 1; got != tc.toDevices {
				t.Errorf("DeviceTwin got %v/%v, want it to get the object: %v", devices.stored, devices.deleted, tc.toDevices)
			}
			if got := len(workloads.stored) == 1 && len(workloads.deleted) == 1; got != tc.toWorkload {
				t.Errorf("Edged got %v/%v, want it to get the object: %v", workloads.stored, workloads.deleted, tc.toWorkload)
			}
		})
	}
	// A device-only node has no Edged: workload objects are stored and go nowhere.
	devices := &recorder{}
	l := listener{devices: devices}
	l.ObjectStored(wire.ObjectRef{Kind: wire.KindPod, Name: "p"}, nil)
	l.ObjectDeleted(wire.ObjectRef{Kind: wire.KindPod, Name: "p"})
	if len(devices.stored)+len(devices.deleted) != 0 {
		t.Errorf("a pod reached DeviceTwin on a node without Edged")
	}
}

// batchRecorder takes batches, as DeviceTwin does.
type batchRecorder struct {
	recorder
	batches [][]hub.Change
}

func (r *batchRecorder) ObjectsChanged(changes []hub.Change) { r.batches = append(r.batches, changes) }

func TestOneCommitReachesDeviceTwinAsOneBatchAndEdgedObjectByObject(t *testing.T) {
	devices, workloads := &batchRecorder{}, &recorder{}
	l := listener{devices: devices, pods: workloads}
	changes := []hub.Change{
		{Ref: wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: "a"}},
		{Ref: wire.ObjectRef{Kind: wire.KindPod, Namespace: "ns", Name: "p"}},
		{Ref: wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: "b"}, Deleted: true},
		{Ref: wire.ObjectRef{Kind: wire.KindSecret, Namespace: "ns", Name: "s"}, Deleted: true},
	}
	l.ObjectsChanged(changes)
	if len(devices.batches) != 1 || len(devices.batches[0]) != 2 ||
		devices.batches[0][0].Ref.Name != "a" || devices.batches[0][1].Ref.Name != "b" || !devices.batches[0][1].Deleted {
		t.Errorf("DeviceTwin got %+v, want one batch: a stored, b deleted, in that order", devices.batches)
	}
	if len(devices.stored)+len(devices.deleted) != 0 {
		t.Errorf("DeviceTwin was also called object by object: %v %v", devices.stored, devices.deleted)
	}
	if len(workloads.stored) != 1 || workloads.stored[0] != wire.KindPod || len(workloads.deleted) != 1 || workloads.deleted[0] != wire.KindSecret {
		t.Errorf("Edged got stored %v, deleted %v; want the pod stored and the secret deleted", workloads.stored, workloads.deleted)
	}
}
