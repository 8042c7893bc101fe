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
	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// listener routes what EdgeHub stores: devices to DeviceTwin, pods and what they use to Edged.
type listener struct {
	devices hub.Listener
	pods    hub.Listener
}

func (l listener) target(kind wire.Kind) hub.Listener {
	switch kind {
	case wire.KindDevice:
		return l.devices
	case wire.KindPod, wire.KindConfigMap, wire.KindSecret, wire.KindServiceAccountToken:
		return l.pods
	}
	return nil
}

// ObjectsChanged hands each component its part of one commit, in order: as one batch to a
// component that takes batches (DeviceTwin writes its twins in one transaction), one by one
// otherwise.
func (l listener) ObjectsChanged(changes []hub.Change) {
	var devices, pods []hub.Change
	for _, c := range changes {
		switch {
		case c.Ref.Kind == wire.KindDevice:
			devices = append(devices, c)
		case l.target(c.Ref.Kind) != nil:
			pods = append(pods, c)
		}
	}
	deliver(l.devices, devices)
	deliver(l.pods, pods)
}

// deliver hands changes to a listener, as one batch if it takes batches.
func deliver(target hub.Listener, changes []hub.Change) {
	if target == nil || len(changes) == 0 {
		return
	}
	if bl, ok := target.(hub.BatchListener); ok {
		bl.ObjectsChanged(changes)
		return
	}
	for _, c := range changes {
		if c.Deleted {
			target.ObjectDeleted(c.Ref)
		} else {
			target.ObjectStored(c.Ref, c.Body)
		}
	}
}

func (l listener) ObjectStored(ref wire.ObjectRef, body []byte) {
	if t := l.target(ref.Kind); t != nil {
		t.ObjectStored(ref, body)
	}
}

func (l listener) ObjectDeleted(ref wire.ObjectRef) {
	if t := l.target(ref.Kind); t != nil {
		t.ObjectDeleted(ref)
	}
}
