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

package twin

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/property"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Group commit. Every write of DeviceTwin — a mapper's reported values or state, the desired
// values of devices the cloud sent — is a request in one queue, served in arrival order by
// one worker. The worker takes everything queued and writes it in one transaction: with
// synchronous=FULL each commit waits for the disk, so a burst of a hundred reports costs one
// wait instead of a hundred, and a desired change that arrives during the burst waits for one
// commit, not for the whole burst. Nothing is answered before the commit holding it returned:
// a mapper gets its result, the report counts as accepted and EdgeHub is notified only then;
// a failed commit refuses every write of the batch (the mappers are told to send again) and
// leaves memory as it was.

// maxBatchRequests bounds the requests of one transaction.
const maxBatchRequests = 1024

// request is one piece of work for the worker.
type request struct {
	// op is a device-topic operation (OpTwinUpdate, OpTwinGet, OpStateUpdate),
	// OpMembershipGet, or "" for object changes from EdgeHub.
	op       string
	ns, name string
	payload  []byte
	// now is when the request arrived, in milliseconds since the Unix epoch.
	now     int64
	changes []objectChange
	// done, if set, is closed once the request was served (committed or refused).
	done chan struct{}
	// ack, if set, acknowledges the mapper's MQTT message once the request was served: a
	// report is PUBACKed only after the commit that holds it.
	ack func()
}

// objectChange is a hub.Change with the device's body already decoded: the hub's body may not
// be kept beyond the listener's call.
type objectChange struct {
	ref     wire.ObjectRef
	deleted bool
	body    wire.Device
}

// submit hands a request to the worker; with wait, it returns once the request was served.
// Before Start and after the publisher stopped there is no worker, and the request is served
// in the caller's goroutine.
func (t *DeviceTwin) submit(r *request, wait bool) {
	t.queueMu.Lock()
	if !t.serving {
		t.queueMu.Unlock()
		t.serve([]*request{r})
		return
	}
	if wait {
		r.done = make(chan struct{})
	}
	t.queue = append(t.queue, r)
	t.queueMu.Unlock()
	select {
	case t.work <- struct{}{}:
	default:
	}
	if wait {
		<-r.done
	}
}

// serveQueued serves one batch of what is queued. If more waits, it wakes the worker again
// rather than looping, so that publishing deltas takes its turn under a steady stream.
func (t *DeviceTwin) serveQueued() {
	t.queueMu.Lock()
	reqs := t.queue
	if len(reqs) > maxBatchRequests {
		reqs = reqs[:maxBatchRequests]
	}
	t.queue = t.queue[len(reqs):]
	more := len(t.queue) > 0
	if !more {
		t.queue = nil
	}
	t.queueMu.Unlock()
	if more {
		select {
		case t.work <- struct{}{}:
		default:
		}
	}
	if len(reqs) > 0 {
		t.serve(reqs)
	}
}

// stopServing ends the worker's part: what is still queued is served here, and later requests
// in their callers' goroutines. Holding mu while switching keeps them in order.
func (t *DeviceTwin) stopServing() {
	t.mu.Lock()
	t.queueMu.Lock()
	t.serving = false
	rest := t.queue
	t.queue = nil
	t.queueMu.Unlock()
	out := t.serveLocked(rest)
	t.mu.Unlock()
	out.finish(t)
}

// serve serves requests in order: the writes between two reads in one transaction.
func (t *DeviceTwin) serve(reqs []*request) {
	t.mu.Lock()
	out := t.serveLocked(reqs)
	t.mu.Unlock()
	out.finish(t)
}

// outcome is what serving a batch leaves to do once mu is released.
type outcome struct {
	pubs   []publication
	notify bool
	done   []chan struct{}
	acks   []func()
}

func (o *outcome) finish(t *DeviceTwin) {
	if o.notify {
		t.cfg.Notify()
	}
	for _, p := range o.pubs {
		t.publish(p.topic, p.payload)
	}
	for _, d := range o.done {
		close(d)
	}
	for _, ack := range o.acks {
		ack()
	}
}

func (t *DeviceTwin) serveLocked(reqs []*request) *outcome {
	out := &outcome{}
	b := t.newBatch()
	for _, r := range reqs {
		switch r.op {
		case OpTwinGet, OpMembershipGet:
			// A read answers with what was written before it.
			b.commit(out)
			b = t.newBatch()
			if r.op == OpTwinGet {
				out.pubs = append(out.pubs, t.twinGetLocked(r))
			} else {
				out.pubs = append(out.pubs, t.membershipGetLocked(r))
			}
		case OpTwinUpdate:
			b.twinUpdate(r)
		case OpStateUpdate:
			b.stateUpdate(r)
		case "":
			b.objectChanges(r.changes)
		}
		if r.done != nil {
			out.done = append(out.done, r.done)
		}
		if r.ack != nil {
			out.acks = append(out.acks, r.ack)
		}
	}
	b.commit(out)
	return out
}

// batch is the writes of one transaction: the devices as they will be once it committed
// (copies, so that a failed commit leaves memory as it was), the writes, and what to do after.
type batch struct {
	t *DeviceTwin
	// work holds the changed devices by id; nil for a device deleted in this batch.
	work map[string]*device
	ops  []func(tx *meta.Tx) error
	// reports is whether the batch queues reports for the cloud.
	reports bool
	// steps run under mu after the commit (ok true) or after a failure, in order.
	steps []func(ok bool, out *outcome)
}

func (t *DeviceTwin) newBatch() *batch {
	return &batch{t: t, work: map[string]*device{}}
}

// device returns the device as this batch sees it, or nil.
func (b *batch) device(id string) *device {
	if d, ok := b.work[id]; ok {
		return d
	}
	return b.t.devices[id]
}

// mutable returns the batch's own copy of a device it may change.
func (b *batch) mutable(id string) *device {
	if d, ok := b.work[id]; ok {
		return d // nil: deleted in this batch
	}
	d := b.t.devices[id]
	if d == nil {
		return nil
	}
	c := *d
	c.twins = maps.Clone(d.twins)
	if c.twins == nil {
		c.twins = map[string]meta.Twin{}
	}
	b.work[id] = &c
	return &c
}

// always publishes whatever the commit's fate.
func (b *batch) always(topic string, payload any) {
	b.steps = append(b.steps, func(_ bool, out *outcome) {
		out.pubs = append(out.pubs, publication{topic: topic, payload: payload})
	})
}

// commit writes the batch in one transaction and settles it.
func (b *batch) commit(out *outcome) {
	t := b.t
	var err error
	if len(b.ops) > 0 {
		err = t.cfg.Store.Update(func(tx *meta.Tx) error {
			for _, op := range b.ops {
				if err := op(tx); err != nil {
					return err
				}
			}
			if t.beforeCommit != nil {
				return t.beforeCommit()
			}
			return nil
		})
	}
	ok := err == nil
	if !ok {
		t.log.Error(err, "Could not store a batch of device twin changes; every write in it is refused", "writes", len(b.ops))
	} else {
		for id, d := range b.work {
			if d == nil {
				delete(t.devices, id)
				delete(t.deltas, id)
			} else {
				t.devices[id] = d
			}
		}
		t.devicesGauge.Store(int64(len(t.devices)))
		if b.reports {
			out.notify = true
		}
	}
	for _, s := range b.steps {
		s(ok, out)
	}
	b.work, b.ops, b.steps, b.reports = map[string]*device{}, nil, nil, false
}

// ObjectsChanged learns of devices EdgeHub stored or deleted, in the cloud's order, and stores
// their twins in one transaction (with whatever reports are queued): a new device is
// announced, a changed desired value goes to the mapper as a delta, a deleted device is
// forgotten and announced. Other kinds are ignored. It returns once the twins are stored.
func (t *DeviceTwin) ObjectsChanged(changes []hub.Change) {
	var mine []objectChange
	for _, c := range changes {
		if c.Ref.Kind != wire.KindDevice {
			continue
		}
		oc := objectChange{ref: c.Ref, deleted: c.Deleted}
		if !c.Deleted {
			if err := json.Unmarshal(c.Body, &oc.body); err != nil {
				t.log.Error(err, "Ignoring a device whose body cannot be read", "device", c.Ref.String())
				continue
			}
		}
		mine = append(mine, oc)
	}
	if len(mine) == 0 {
		return
	}
	t.submit(&request{changes: mine, now: t.now()}, true)
}

// ObjectStored is ObjectsChanged for one stored object.
func (t *DeviceTwin) ObjectStored(ref wire.ObjectRef, body []byte) {
	t.ObjectsChanged([]hub.Change{{Ref: ref, Body: body}})
}

// ObjectDeleted is ObjectsChanged for one deleted object.
func (t *DeviceTwin) ObjectDeleted(ref wire.ObjectRef) {
	t.ObjectsChanged([]hub.Change{{Ref: ref, Deleted: true}})
}

// objectChanges adds the twins of changed devices to the batch.
func (b *batch) objectChanges(changes []objectChange) {
	t := b.t
	now := t.now()
	for _, c := range changes {
		ref := c.ref
		id := deviceID(ref.Namespace, ref.Name)
		if c.deleted {
			b.ops = append(b.ops, func(tx *meta.Tx) error { return tx.DeleteDevice(ref.Namespace, ref.Name) })
			if b.device(id) == nil {
				continue
			}
			b.work[id] = nil
			b.steps = append(b.steps, func(ok bool, _ *outcome) {
				if !ok {
					// The object is gone from the store, so the device goes from memory all the
					// same; the next start drops its rows.
					t.log.Error(nil, "Could not delete the twins of a device", "device", id)
					delete(t.devices, id)
					delete(t.deltas, id)
					t.devicesGauge.Store(int64(len(t.devices)))
				}
				t.memberRemovedLocked(ref.Namespace, ref.Name)
				t.signal()
			})
			continue
		}
		d := b.mutable(id)
		known := d != nil
		recreated := known && d.body.UID != c.body.UID
		if !known || recreated {
			if recreated {
				// The old device's reported values and state are not this one's.
				b.ops = append(b.ops, func(tx *meta.Tx) error { return tx.DeleteDevice(ref.Namespace, ref.Name) })
			}
			d = &device{namespace: ref.Namespace, name: ref.Name, twins: map[string]meta.Twin{}}
			b.work[id] = d
		}
		put, del := desiredRows(d.namespace, d.name, ref.Version, c.body, d.twins, now)
		if len(put) > 0 || len(del) > 0 {
			b.ops = append(b.ops, func(tx *meta.Tx) error {
				for _, r := range put {
					if err := tx.PutTwin(r); err != nil {
						return err
					}
				}
				for _, p := range del {
					if err := tx.DeleteTwin(ref.Namespace, ref.Name, p); err != nil {
						return err
					}
				}
				return nil
			})
		}
		for _, r := range put {
			d.twins[r.Property] = r
		}
		for _, p := range del {
			delete(d.twins, p)
		}
		d.version, d.body, d.props = ref.Version, c.body, modelProperties(c.body)
		b.steps = append(b.steps, func(ok bool, _ *outcome) {
			if !ok {
				// The object is stored; the next start rebuilds the twins from it.
				t.log.Error(nil, "Could not store the twins of a device", "device", ref.String())
				return
			}
			if !known || recreated {
				if recreated {
					t.memberRemovedLocked(ref.Namespace, ref.Name)
				}
				t.memberAddedLocked(ref.Namespace, ref.Name)
			}
			t.deltas[id] = true
			t.signal()
		})
	}
}

// twinUpdate checks the reported values against the device's model and adds the accepted
// ones, with their outbox reports, to the batch. Values that do not fit are refused by name in
// a 400 result; the others are still accepted.
func (b *batch) twinUpdate(r *request) {
	t := b.t
	ns, name, now := r.ns, r.name, r.now
	resultTopic := DeviceTopic(ns, name, OpTwinUpdateResult)
	u, err := ParseUpdate(r.payload)
	if err != nil {
		t.countRefusal(requestRefusal(err), 1)
		b.always(resultTopic, Result{BaseMessage: t.base(EventID(r.payload), now), Code: Code(err), Reason: err.Error()})
		return
	}
	id := deviceID(ns, name)
	d := b.device(id)
	if d == nil {
		err := unknownDevice(ns, name)
		t.countRefusal(RefusedUnknownDevice, 1)
		b.always(resultTopic, Result{BaseMessage: t.base(u.EventID, now), Code: Code(err), Reason: err.Error()})
		return
	}
	var accepted []meta.Twin
	var problems []string
	for _, prop := range slices.Sorted(maps.Keys(u.Twin)) {
		value := *u.Twin[prop].Actual.Value
		mp := d.props[prop]
		if mp == nil {
			t.countRefusal(property.ReasonUnknownProperty, 1)
			problems = append(problems, fmt.Sprintf("property %q: the device's model has no property of this name", prop))
			continue
		}
		if p := property.CheckValue(mp, value); p != nil {
			t.countRefusal(p.Reason, 1)
			problems = append(problems, p.Error())
			continue
		}
		row := d.twins[prop]
		row.Reported = &value
		row.ReportedAt = now
		accepted = append(accepted, row)
	}
	result := Result{BaseMessage: t.base(u.EventID, now), Version: d.version}
	if len(problems) > 0 {
		err := fmt.Errorf("%w: %s", ErrBadRequest, strings.Join(problems, "; "))
		result.Code, result.Reason = Code(err), err.Error()
	}
	if len(accepted) == 0 {
		b.always(resultTopic, result)
		return
	}
	d = b.mutable(id)
	props, version := d.props, d.version
	b.ops = append(b.ops, func(tx *meta.Tx) error {
		for _, row := range accepted {
			if err := tx.PutTwin(row); err != nil {
				return err
			}
			body, err := json.Marshal(twinReport(props[row.Property], row, version))
			if err != nil {
				return fmt.Errorf("encoding the report of %s: %w", row.Property, err)
			}
			if _, err := tx.Enqueue(wire.ReportKindDeviceTwin, ns, name, row.Property, body); err != nil {
				return err
			}
		}
		return nil
	})
	b.reports = true
	doc := &Document{BaseMessage: t.base(u.EventID, now), Twin: map[string]*Doc{}}
	result.Twin = map[string]*MsgTwin{}
	for _, row := range accepted {
		doc.Twin[row.Property] = &Doc{Last: msgTwin(props[row.Property], d.twins[row.Property]), Current: msgTwin(props[row.Property], row)}
		d.twins[row.Property] = row
		result.Twin[row.Property] = msgTwin(props[row.Property], row)
	}
	eventID := u.EventID
	b.steps = append(b.steps, func(ok bool, out *outcome) {
		if !ok {
			t.countRefusal(RefusedStoreFailed, uint64(len(accepted)))
			reason := fmt.Errorf("%w: the edge could not store the update, nothing changed; send it again", ErrInternal)
			out.pubs = append(out.pubs, publication{topic: resultTopic,
				payload: Result{BaseMessage: t.base(eventID, now), Code: Code(reason), Reason: reason.Error()}})
			return
		}
		t.reportsAccepted.Add(uint64(len(accepted)))
		out.pubs = append(out.pubs, publication{topic: resultTopic, payload: result},
			publication{topic: DeviceTopic(ns, name, OpTwinUpdateDocument), payload: doc})
	})
}

// stateUpdate adds the device's state, with its outbox report, to the batch.
func (b *batch) stateUpdate(r *request) {
	t := b.t
	ns, name, now := r.ns, r.name, r.now
	resultTopic := DeviceTopic(ns, name, OpStateUpdateResult)
	u, err := ParseStateUpdate(r.payload)
	if err != nil {
		t.countRefusal(requestRefusal(err), 1)
		b.always(resultTopic, StateResult{BaseMessage: t.base(EventID(r.payload), now), Code: Code(err), Reason: err.Error()})
		return
	}
	id := deviceID(ns, name)
	d := b.mutable(id)
	if d == nil {
		err := unknownDevice(ns, name)
		t.countRefusal(RefusedUnknownDevice, 1)
		b.always(resultTopic, StateResult{BaseMessage: t.base(u.EventID, now), Code: Code(err), Reason: err.Error()})
		return
	}
	st := meta.DeviceState{Namespace: ns, Name: name, State: u.State, At: now}
	b.ops = append(b.ops, func(tx *meta.Tx) error {
		if err := tx.PutDeviceState(st); err != nil {
			return err
		}
		body, err := json.Marshal(wire.StateReport{State: st.State, Timestamp: st.At})
		if err != nil {
			return fmt.Errorf("encoding the state report: %w", err)
		}
		_, err = tx.Enqueue(wire.ReportKindDeviceState, ns, name, "", body)
		return err
	})
	b.reports = true
	d.state = &st
	eventID := u.EventID
	b.steps = append(b.steps, func(ok bool, out *outcome) {
		if !ok {
			t.countRefusal(RefusedStoreFailed, 1)
			reason := fmt.Errorf("%w: the edge could not store the state, nothing changed; send it again", ErrInternal)
			out.pubs = append(out.pubs, publication{topic: resultTopic,
				payload: StateResult{BaseMessage: t.base(eventID, now), Code: Code(reason), Reason: reason.Error()}})
			return
		}
		t.statesAccepted.Add(1)
		out.pubs = append(out.pubs, publication{topic: resultTopic,
			payload: StateResult{BaseMessage: t.base(eventID, now), Device: &DeviceStatus{Name: name, State: st.State}}})
	})
}

// twinGetLocked answers a twin/get with every twin of the device.
func (t *DeviceTwin) twinGetLocked(r *request) publication {
	resultTopic := DeviceTopic(r.ns, r.name, OpTwinGetResult)
	req, err := ParseRequest(r.payload)
	if err != nil {
		return publication{topic: resultTopic,
			payload: Result{BaseMessage: t.base(EventID(r.payload), r.now), Code: Code(err), Reason: err.Error()}}
	}
	d := t.devices[deviceID(r.ns, r.name)]
	result := Result{BaseMessage: t.base(req.EventID, r.now)}
	if d == nil {
		err := unknownDevice(r.ns, r.name)
		result.Code, result.Reason = Code(err), err.Error()
	} else {
		result.Version, result.Twin = d.version, d.msgTwins()
	}
	return publication{topic: resultTopic, payload: result}
}

// membershipGetLocked answers a membership/get with every device of the node and its twins.
func (t *DeviceTwin) membershipGetLocked(r *request) publication {
	resultTopic := NodeTopic(t.cfg.NodeName, OpMembershipGetResult)
	req, err := ParseRequest(r.payload)
	if err != nil {
		return publication{topic: resultTopic, payload: MembershipResult{BaseMessage: t.base(EventID(r.payload), r.now),
			Code: Code(err), Reason: err.Error(), Devices: []MembershipDevice{}}}
	}
	result := MembershipResult{BaseMessage: t.base(req.EventID, r.now), Devices: make([]MembershipDevice, 0, len(t.devices))}
	for _, id := range slices.Sorted(maps.Keys(t.devices)) {
		result.Devices = append(result.Devices, t.devices[id].membership())
	}
	return publication{topic: resultTopic, payload: result}
}
