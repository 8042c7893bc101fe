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
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/devicemodel"
	"github.com/edgetwin/edgetwin/pkg/property"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// maxListed bounds how many properties a condition message names, so a device with a hundred
// pending properties still has a readable condition.
const maxListed = 5

// computeDeviceStatus recomputes the derived part of a device's status from the device, its
// model and its node (model and node are nil when they do not exist). What only the edge knows
// (twins, lastSeen) is left as it is; state is only defaulted, or set Offline when the node is
// not connected, since a disconnected node cannot vouch for its devices.
func computeDeviceStatus(dev *v1alpha1.Device, model *v1alpha1.DeviceModel, node *v1alpha1.EdgeNode) {
	st := &dev.Status
	gen := dev.Generation
	st.ObservedGeneration = gen

	// ModelResolved: the model exists and every desired value fits it.
	rejected := map[string]bool{}
	if model == nil {
		setCondition(&st.Conditions, gen, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, v1alpha1.ReasonModelNotFound,
			fmt.Sprintf("DeviceModel %q does not exist in namespace %q", dev.Spec.ModelRef.Name, dev.Namespace))
	} else if problems := devicemodel.CheckDesired(&model.Spec, dev.Spec.Properties); len(problems) == 0 {
		setCondition(&st.Conditions, gen, v1alpha1.ConditionModelResolved, metav1.ConditionTrue, v1alpha1.ReasonModelFound,
			fmt.Sprintf("DeviceModel %q resolved; every desired value fits it", model.Name))
	} else {
		msgs := make([]string, 0, len(problems))
		for i := range problems {
			rejected[problems[i].Property] = true
			if i < maxListed {
				msgs = append(msgs, problems[i].Error())
			}
		}
		if len(problems) > maxListed {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(problems)-maxListed))
		}
		setCondition(&st.Conditions, gen, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, problems[0].Reason,
			strings.Join(msgs, "; ")+"; these values are not sent to the edge")
	}

	// NodeConnected: the node exists and its agent holds a session (CloudHub sets Connected).
	switch {
	case node == nil:
		setCondition(&st.Conditions, gen, v1alpha1.ConditionNodeConnected, metav1.ConditionFalse, v1alpha1.ReasonNodeNotFound,
			fmt.Sprintf("EdgeNode %q does not exist", dev.Spec.NodeName))
	case meta.IsStatusConditionTrue(node.Status.Conditions, v1alpha1.ConditionConnected):
		setCondition(&st.Conditions, gen, v1alpha1.ConditionNodeConnected, metav1.ConditionTrue, v1alpha1.ReasonNodeConnected,
			fmt.Sprintf("EdgeNode %q is connected", node.Name))
	default:
		msg := fmt.Sprintf("EdgeNode %q is not connected", node.Name)
		if c := meta.FindStatusCondition(node.Status.Conditions, v1alpha1.ConditionConnected); c != nil && c.Message != "" {
			msg += ": " + c.Message
		}
		setCondition(&st.Conditions, gen, v1alpha1.ConditionNodeConnected, metav1.ConditionFalse, v1alpha1.ReasonNodeDisconnected, msg)
	}

	setSynced(dev, model, rejected)

	// State is derived: the mapper's word (Reachable) while the node is connected; Offline while
	// it is not, since a disconnected node cannot vouch for its devices. Reachable keeps the
	// mapper's word meanwhile, so the state returns with the node.
	reachable := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReachable)
	if reachable == nil {
		setCondition(&st.Conditions, gen, v1alpha1.ConditionReachable, metav1.ConditionUnknown, v1alpha1.ReasonNoStateReported,
			"the device's mapper has not reported a state yet")
		reachable = meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReachable)
	} else {
		reachable.ObservedGeneration = gen
	}
	switch {
	case reachable.Reason == v1alpha1.ReasonNoStateReported:
		st.State = v1alpha1.DeviceStateUnknown
	case !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionNodeConnected):
		st.State = v1alpha1.DeviceStateOffline
	case reachable.Status == metav1.ConditionTrue:
		st.State = v1alpha1.DeviceStateOnline
	case reachable.Status == metav1.ConditionFalse:
		st.State = v1alpha1.DeviceStateOffline
	default:
		st.State = v1alpha1.DeviceStateUnknown
	}

	setReady(&st.Conditions, gen, v1alpha1.ConditionModelResolved, v1alpha1.ConditionNodeConnected,
		v1alpha1.ConditionReachable, v1alpha1.ConditionSynced)
}

// setReachable records the state a mapper reported, at edge time at (ms since the epoch).
func setReachable(st *v1alpha1.DeviceStatus, gen int64, state string, at int64) {
	status := metav1.ConditionUnknown
	switch state {
	case wire.DeviceStateOnline, wire.DeviceStateOK:
		status = metav1.ConditionTrue
	case wire.DeviceStateOffline, wire.DeviceStateUnhealthy:
		status = metav1.ConditionFalse
	}
	setCondition(&st.Conditions, gen, v1alpha1.ConditionReachable, status, v1alpha1.ReasonStateReported,
		fmt.Sprintf("the mapper reported %q at %s (edge time)", state, time.UnixMilli(at).UTC().Format(time.RFC3339)))
}

// setSynced sets Synced: True when every desired value that is sent to the edge (the rejected
// ones are not) has been reported back with the same value.
func setSynced(dev *v1alpha1.Device, model *v1alpha1.DeviceModel, rejected map[string]bool) {
	st := &dev.Status
	reported := make(map[string]string, len(st.Twins))
	for i := range st.Twins {
		if r := st.Twins[i].Reported; r != nil {
			reported[st.Twins[i].Name] = r.Value
		}
	}
	desired, pending := 0, []string{}
	for i := range dev.Spec.Properties {
		p := &dev.Spec.Properties[i]
		if p.Desired == nil || rejected[p.Name] {
			continue
		}
		desired++
		var mp *v1alpha1.ModelProperty
		if model != nil {
			mp = devicemodel.Find(&model.Spec, p.Name)
		}
		got, ok := reported[p.Name]
		switch {
		case !ok:
			pending = append(pending, fmt.Sprintf("%s (desired %q, nothing reported)", p.Name, *p.Desired))
		case !property.Equal(devicemodel.Schema(mp), *p.Desired, got):
			pending = append(pending, fmt.Sprintf("%s (desired %q, reported %q)", p.Name, *p.Desired, got))
		}
	}
	gen := dev.Generation
	switch {
	case desired == 0:
		setCondition(&st.Conditions, gen, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonNothingDesired,
			"the device has no desired values to wait for")
	case len(pending) == 0:
		setCondition(&st.Conditions, gen, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSynced,
			fmt.Sprintf("all %d desired values reported back", desired))
	default:
		listed := pending
		if len(listed) > maxListed {
			listed = append(listed[:maxListed:maxListed], fmt.Sprintf("and %d more", len(pending)-maxListed))
		}
		setCondition(&st.Conditions, gen, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonAwaitingReport,
			fmt.Sprintf("%d of %d desired values not yet reported back: %s", len(pending), desired, strings.Join(listed, ", ")))
	}
}
