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
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// DeviceTwin takes EdgeHub's batches, so the twins of one commit are one transaction too.
var _ hub.BatchListener = (*DeviceTwin)(nil)

// reportRequest is a mapper's twin/update of one property, as the bus handler queues it.
func (e *env) reportRequest(device, event, prop, value string) *request {
	return &request{op: OpTwinUpdate, ns: "default", name: device, now: e.twin.now(),
		payload: fmt.Appendf(nil, `{"event_id":%q,"twin":{%q:{"actual":{"value":%q}}}}`, event, prop, value)}
}

func TestABurstOfReportsIsOneCommitAndTheNewestValuePerPropertyWins(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", new("20"), nil))
	e.putDevice("other", "v1", thermostat("u2", nil, nil))

	// Ten values of one property, in order, and a state, then a value of another device.
	burst := make([]*request, 0, 12)
	for i := range 10 {
		burst = append(burst, e.reportRequest("thermo", "t"+strconv.Itoa(i), "temperature", strconv.Itoa(i)))
	}
	burst = append(burst, &request{op: OpStateUpdate, ns: "default", name: "thermo", now: e.twin.now(),
		payload: []byte(`{"event_id":"s","state":"online"}`)})
	burst = append(burst, e.reportRequest("other", "o", "setpoint", "12"))
	commits := e.store.Commits()
	e.twin.serve(burst)
	if got := e.store.Commits() - commits; got != 1 {
		t.Errorf("a burst of %d reports took %d commits, want 1", len(burst), got)
	}

	// Every report was answered, in order, each as accepted.
	for i := range 10 {
		var res Result
		m.await(dev(OpTwinUpdateResult), &res)
		if res.EventID != "t"+strconv.Itoa(i) || res.Code != 0 || *res.Twin["temperature"].Actual.Value != strconv.Itoa(i) {
			t.Fatalf("result %d = %+v, want t%d accepted with value %d", i, res, i, i)
		}
		var doc Document
		m.await(dev(OpTwinUpdateDocument), &doc)
		if i > 0 && *doc.Twin["temperature"].Last.Actual.Value != strconv.Itoa(i-1) {
			t.Errorf("document %d says the last value was %v, want %d", i, doc.Twin["temperature"].Last.Actual.Value, i-1)
		}
	}
	var st StateResult
	m.await(dev(OpStateUpdateResult), &st)
	if st.Code != 0 || st.Device.State != "online" {
		t.Errorf("state result = %+v", st)
	}

	// Latest wins: one pending report per property, the newest value, with sequences in the
	// order the reports came.
	pending := e.pending()
	got := map[string]string{}
	var order []string
	for _, p := range pending {
		var rep wire.TwinReport
		if p.Kind == wire.ReportKindDeviceTwin {
			if err := json.Unmarshal(p.Body, &rep); err != nil {
				t.Fatal(err)
			}
			got[p.Name+"/"+rep.Property] = rep.Value
			order = append(order, p.Name+"/"+rep.Property)
		} else {
			order = append(order, p.Name+"/state")
		}
	}
	if len(pending) != 3 || got["thermo/temperature"] != "9" || got["other/setpoint"] != "12" ||
		!slices.Equal(order, []string{"thermo/temperature", "thermo/state", "other/setpoint"}) {
		t.Errorf("pending = %v in order %v, want thermo's temperature 9, its state, then other's setpoint 12", got, order)
	}
	for _, tw := range e.twins() {
		if tw.Name == "thermo" && tw.Property == "temperature" && (tw.Reported == nil || *tw.Reported != "9") {
			t.Errorf("the stored twin holds %v, want the newest value 9", tw.Reported)
		}
	}
	if s := e.twin.Stats(); s.ReportsAccepted != 11 || s.StatesAccepted != 1 {
		t.Errorf("stats = %+v, want 11 values and 1 state accepted", s)
	}
}

func TestReportsArrivingWhileTheWorkerIsBusyShareACommit(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	commits := e.store.Commits()
	// While the twin is busy (mu held, as during a commit), the mapper's reports queue. The
	// worker may have taken some of them before the others came, and waits; whichever way,
	// the others wait together and go in one commit after it.
	const n = 50
	e.twin.mu.Lock()
	for i := range n {
		m.send(dev(OpTwinUpdate), fmt.Sprintf(`{"event_id":"e%d","twin":{"temperature":{"actual":{"value":"%d"}}}}`, i, i))
	}
	// The bus delivers in order on one goroutine: once this marker arrived, every report's
	// handler has returned, so every report is queued or taken by the waiting worker.
	m.send(dev(OpTwinGetResult), `{"event_id":"marker"}`)
	var marker Result
	m.await(dev(OpTwinGetResult), &marker)
	e.twin.mu.Unlock()
	for i := range n {
		var res Result
		m.await(dev(OpTwinUpdateResult), &res)
		if res.EventID != "e"+strconv.Itoa(i) || res.Code != 0 {
			t.Fatalf("result %d = %+v, want e%d accepted, in order", i, res, i)
		}
	}
	if got := e.store.Commits() - commits; got > 2 {
		t.Errorf("%d queued reports took %d commits, want at most 2", n, got)
	}
	if got := pendingValues(t, e.pending()); !slices.Equal(got["temperature"], []string{strconv.Itoa(n - 1)}) {
		t.Errorf("pending = %v, want the newest temperature once", got)
	}
}

// An accepted report is answered only after its commit (TestAFailedBatchRefusesEveryWrite...
// shows that a batch whose commit fails answers 500 to all of it), so whatever was answered is
// on disk when edgecore stops.
func TestEveryAnsweredReportSurvivesARestart(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	const n = 20
	for i := range n {
		m.send(dev(OpTwinUpdate), fmt.Sprintf(`{"event_id":"e%d","twin":{"setpoint":{"actual":{"value":"%d"}},"temperature":{"actual":{"value":"%d"}}}}`,
			i, 10+i%10, i))
	}
	for i := range n {
		var res Result
		m.await(dev(OpTwinUpdateResult), &res)
		if res.Code != 0 || res.EventID != "e"+strconv.Itoa(i) {
			t.Fatalf("result %d = %+v, want e%d accepted", i, res, i)
		}
	}
	// edgecore stops and starts again, without the cloud: the last answered values are held
	// and pending, once each.
	e.restart()
	got := pendingValues(t, e.pending())
	if !slices.Equal(got["setpoint"], []string{strconv.Itoa(10 + (n-1)%10)}) || !slices.Equal(got["temperature"], []string{strconv.Itoa(n - 1)}) {
		t.Errorf("pending after a restart = %v, want the last accepted setpoint %d and temperature %d", got, 10+(n-1)%10, n-1)
	}
	for _, tw := range e.twins() {
		if tw.Property == "temperature" && (tw.Reported == nil || *tw.Reported != strconv.Itoa(n-1)) {
			t.Errorf("the stored temperature is %v after a restart, want %d", tw.Reported, n-1)
		}
	}
}

func TestAFailedBatchRefusesEveryWriteInItAndKeepsMemoryAsItWas(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	e.twin.beforeCommit = func() error { return errors.New("disk gone") }
	e.twin.serve([]*request{
		e.reportRequest("thermo", "a", "temperature", "1"),
		{op: OpStateUpdate, ns: "default", name: "thermo", now: e.twin.now(), payload: []byte(`{"event_id":"s","state":"online"}`)},
		e.reportRequest("thermo", "b", "setpoint", "11"),
	})
	e.twin.beforeCommit = nil
	for _, want := range []string{"a", "b"} {
		var res Result
		m.await(dev(OpTwinUpdateResult), &res)
		if res.EventID != want || res.Code != CodeInternal {
			t.Errorf("result = %+v, want %s refused with a 500", res, want)
		}
	}
	var st StateResult
	m.await(dev(OpStateUpdateResult), &st)
	if st.Code != CodeInternal {
		t.Errorf("state result = %+v, want a 500", st)
	}
	if len(e.pending()) != 0 {
		t.Errorf("a failed batch left reports: %+v", e.pending())
	}
	e.twin.mu.Lock()
	d := e.twin.devices["default/thermo"]
	if d.twins["temperature"].Reported != nil || d.state != nil {
		t.Errorf("a failed batch changed memory: temperature %v, state %v", d.twins["temperature"].Reported, d.state)
	}
	e.twin.mu.Unlock()
	if s := e.twin.Stats(); s.ReportsAccepted != 0 || s.ReportsRefused[RefusedStoreFailed] != 3 {
		t.Errorf("stats = %+v, want nothing accepted and 3 refused as StoreFailed", s)
	}
}

func TestTheDesiredValuesOfOneHubBatchAreOneCommit(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	changes := make([]hub.Change, 0, 8)
	for i := range 5 {
		ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "d" + strconv.Itoa(i), Version: "v1"}
		body, err := json.Marshal(thermostat("u"+strconv.Itoa(i), new(strconv.Itoa(10+i)), nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutObject(ref, body); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, hub.Change{Ref: ref, Body: body})
	}
	// A device changed twice in the batch, and one deleted after it was added: the last word counts.
	body, _ := json.Marshal(thermostat("u0", new("25"), nil))
	changes = append(changes, hub.Change{Ref: wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "d0", Version: "v2"}, Body: body},
		hub.Change{Ref: wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "d4"}, Deleted: true},
		hub.Change{Ref: wire.ObjectRef{Kind: wire.KindPod, Namespace: "default", Name: "p"}})
	commits := e.store.Commits()
	e.twin.ObjectsChanged(changes)
	if got := e.store.Commits() - commits; got != 1 {
		t.Errorf("the twins of one batch of %d changes took %d commits, want 1", len(changes), got)
	}
	desired := map[string]string{}
	for _, tw := range e.twins() {
		if tw.Property == "setpoint" && tw.Desired != nil {
			desired[tw.Name] = *tw.Desired + "@" + tw.DesiredVersion
		}
	}
	want := map[string]string{"d0": "25@v2", "d1": "11@v1", "d2": "12@v1", "d3": "13@v1"}
	if fmt.Sprint(desired) != fmt.Sprint(want) {
		t.Errorf("stored desired setpoints = %v, want %v", desired, want)
	}
	var members MembershipUpdated
	m.await(NodeTopic(node, OpMembershipUpdated), &members)
	added := make([]string, 0, len(members.Added))
	for _, a := range members.Added {
		added = append(added, a.Name)
	}
	if !slices.Equal(added, []string{"d0", "d1", "d2", "d3"}) || len(members.Removed) != 0 {
		t.Errorf("membership = added %v removed %v, want d0-d3 added and d4 never announced", added, members.Removed)
	}
	if s := e.twin.Stats(); s.Devices != 4 {
		t.Errorf("devices = %d, want 4", s.Devices)
	}
}

// A deleted object is gone from the store whatever happens to its twins, so the device goes
// from memory even when the batch that deletes its twins fails; the next start drops the rows.
func TestADeviceDeletedInAFailedBatchIsForgottenAndTheRowsGoAtTheNextStart(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	var members MembershipUpdated
	m.await(NodeTopic(node, OpMembershipUpdated), &members)
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "thermo"}
	if err := e.store.DeleteObject(ref); err != nil {
		t.Fatal(err)
	}
	e.twin.mu.Lock()
	e.twin.beforeCommit = func() error { return errors.New("disk gone") }
	e.twin.mu.Unlock()
	e.twin.ObjectDeleted(ref)
	e.twin.mu.Lock()
	e.twin.beforeCommit = nil
	e.twin.mu.Unlock()
	m.await(NodeTopic(node, OpMembershipUpdated), &members)
	if len(members.Removed) != 1 || members.Removed[0].Name != "thermo" {
		t.Errorf("membership = %+v, want thermo removed", members)
	}
	if s := e.twin.Stats(); s.Devices != 0 {
		t.Errorf("devices = %d, want the deleted one forgotten", s.Devices)
	}
	if len(e.twins()) == 0 {
		t.Fatal("the failed batch removed the rows; the test proves nothing")
	}
	e.restart()
	if tw := e.twins(); len(tw) != 0 {
		t.Errorf("after a restart the twins of the deleted device are still stored: %+v", tw)
	}
}

func TestAMapperReportIsAcknowledgedOnlyOnceItIsCommitted(t *testing.T) {
	e := newEnv(t)
	newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))

	// The ack (the PUBACK to the mapper) must find the report already in the durable outbox.
	pendingAtAck := make(chan int, 1)
	e.twin.handleDeviceAcked(DeviceTopic("default", "thermo", OpTwinUpdate),
		[]byte(`{"event_id":"a","twin":{"temperature":{"actual":{"value":"21"}}}}`),
		func() { pendingAtAck <- len(e.pending()) })
	select {
	case n := <-pendingAtAck:
		if n != 1 {
			t.Fatalf("the report was acknowledged with %d reports in the outbox, want it stored first", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the report was never acknowledged")
	}

	// A message on a topic that names no device is dropped, and acknowledged at once so the
	// broker does not deliver it again and again.
	dropped := false
	e.twin.handleDeviceAcked("$hw/events/device/update", []byte(`{}`), func() { dropped = true })
	if !dropped {
		t.Error("a message on a topic naming no device was not acknowledged")
	}
}
