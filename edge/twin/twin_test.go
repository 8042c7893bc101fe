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
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// DeviceTwin is what edgecore hands EdgeHub as its Listener.
var _ hub.Listener = (*DeviceTwin)(nil)

var errBusDown = errors.New("the bus is down")

// waitFor bounds every wait for a message: the test fails after it rather than hanging.
const waitFor = 10 * time.Second

const node = "edge-1"

// env is one edgecore's worth of DeviceTwin: a store file, a bus and the twin, restartable.
type env struct {
	t        *testing.T
	path     string
	store    *meta.Store
	bus      *memBus
	twin     *DeviceTwin
	clock    *testingclock.FakeClock
	notified atomic.Int32
	stop     func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "edge.db"), clock: testingclock.NewFakeClock(time.UnixMilli(1767225600000))}
	store, err := meta.Open(e.path)
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	e.start()
	t.Cleanup(e.shutdown)
	return e
}

// start makes a DeviceTwin over the current store and a fresh bus, as edgecore's start does.
// A mapper, if wanted, is on the bus before DeviceTwin starts, as a mapper with a persistent
// session is, and gets what DeviceTwin publishes at start.
func (e *env) start(withMapper ...bool) *mapper {
	e.t.Helper()
	e.bus = newMemBus()
	var m *mapper
	if len(withMapper) > 0 && withMapper[0] {
		m = newMapper(e.t, e.bus)
	}
	tw, err := New(Config{NodeName: node, Store: e.store, Bus: e.bus, Notify: func() { e.notified.Add(1) },
		Clock: e.clock, Logger: testr.New(e.t)})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tw.Start(ctx); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.twin = tw
	e.stop = func() {
		cancel()
		<-tw.Done()
		e.bus.close()
	}
	return m
}

func (e *env) shutdown() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	if e.store != nil {
		_ = e.store.Close()
		e.store = nil
	}
}

// restart stops everything, closes the store and opens it again: edgecore restarting with no
// cloud to talk to. It returns a mapper on the new bus.
func (e *env) restart() *mapper {
	e.t.Helper()
	e.shutdown()
	store, err := meta.Open(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = store
	return e.start(true)
}

// putDevice stores a device as EdgeHub does: the store first, then the listener.
func (e *env) putDevice(name, version string, d wire.Device) {
	e.t.Helper()
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: name, Version: version}
	body, err := json.Marshal(d)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.PutObject(ref, body); err != nil {
		e.t.Fatal(err)
	}
	e.twin.ObjectStored(ref, body)
}

func (e *env) deleteDevice(name string) {
	e.t.Helper()
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: name}
	if err := e.store.DeleteObject(ref); err != nil {
		e.t.Fatal(err)
	}
	e.twin.ObjectDeleted(ref)
}

func (e *env) twins() []meta.Twin {
	e.t.Helper()
	tw, err := e.store.Twins()
	if err != nil {
		e.t.Fatal(err)
	}
	return tw
}

func (e *env) pending() []wire.Report {
	e.t.Helper()
	p, err := e.store.Pending(0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// thermostat is a device with a read-only sensor and two writable properties.
func thermostat(uid string, setpoint, power *string) wire.Device {
	return wire.Device{UID: uid, Model: "thermostat", Protocol: "modbus", Properties: []wire.DeviceProperty{
		{Name: "temperature", Type: "float", AccessMode: "ReadOnly", Minimum: new("-40"), Maximum: new("85")},
		{Name: "setpoint", Type: "double", AccessMode: "ReadWrite", Minimum: new("5"), Maximum: new("30"), Desired: setpoint},
		{Name: "power", Type: "boolean", AccessMode: "ReadWrite", Desired: power},
	}}
}

// mapper is a test mapper: it speaks the topics over the bus and keeps what the edge publishes,
// per topic, in order.
type mapper struct {
	t      *testing.T
	bus    Bus
	mu     sync.Mutex
	got    map[string][][]byte
	signal chan struct{}
}

func newMapper(t *testing.T, bus Bus) *mapper {
	m := &mapper{t: t, bus: bus, got: map[string][][]byte{}, signal: make(chan struct{})}
	keep := func(topic string, payload []byte) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.got[topic] = append(m.got[topic], payload)
		close(m.signal)
		m.signal = make(chan struct{})
	}
	for _, f := range []string{
		DeviceTopic("+", "+", OpTwinUpdateResult), DeviceTopic("+", "+", OpTwinUpdateDelta),
		DeviceTopic("+", "+", OpTwinUpdateDocument), DeviceTopic("+", "+", OpTwinGetResult),
		DeviceTopic("+", "+", OpStateUpdateResult), NodeTopic(node, OpMembershipGetResult), NodeTopic(node, OpMembershipUpdated),
	} {
		if err := bus.Subscribe(f, keep); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (m *mapper) send(topic, payload string) {
	m.t.Helper()
	if err := m.bus.Publish(topic, []byte(payload)); err != nil {
		m.t.Fatal(err)
	}
}

// await takes the next message on topic, waiting a bounded time, and decodes it strictly.
func (m *mapper) await(topic string, into any) {
	m.t.Helper()
	deadline := time.After(waitFor)
	for {
		m.mu.Lock()
		if q := m.got[topic]; len(q) > 0 {
			m.got[topic] = q[1:]
			m.mu.Unlock()
			if err := decode(q[0], into); err != nil {
				m.t.Fatalf("the edge published on %s what the protocol types cannot read: %v\n%s", topic, err, q[0])
			}
			return
		}
		signal := m.signal
		m.mu.Unlock()
		select {
		case <-signal:
		case <-deadline:
			m.t.Fatalf("nothing published on %s within %s", topic, waitFor)
		}
	}
}

func dev(op string) string { return DeviceTopic("default", "thermo", op) }

func TestAMapperGetsItsDeltasReportsValuesAndGetsResults(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", new("21.5"), new("true")))

	var members MembershipUpdated
	m.await(NodeTopic(node, OpMembershipUpdated), &members)
	if len(members.Added) != 1 || members.Added[0].ID != "default/thermo" || len(members.Removed) != 0 {
		t.Fatalf("membership/updated = %+v, want thermo added", members)
	}
	var delta Delta
	m.await(dev(OpTwinUpdateDelta), &delta)
	if delta.Version != "v1" || len(delta.Delta) != 2 || delta.Delta["setpoint"] != "21.5" || delta.Delta["power"] != "true" {
		t.Fatalf("delta = %+v, want setpoint 21.5 and power true at v1", delta)
	}

	m.send(dev(OpTwinUpdate), `{"event_id":"e1","timestamp":1,"twin":{"setpoint":{"actual":{"value":"21.50"}},`+
		`"temperature":{"actual":{"value":"19.0"},"metadata":{"type":"float"}}}}`)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	if res.EventID != "e1" || res.Code != 0 || len(res.Twin) != 2 || *res.Twin["setpoint"].Actual.Value != "21.50" {
		t.Fatalf("result = %+v, want e1 accepted with both values", res)
	}
	var doc Document
	m.await(dev(OpTwinUpdateDocument), &doc)
	if d := doc.Twin["temperature"]; d == nil || d.Last.Actual != nil || *d.Current.Actual.Value != "19.0" {
		t.Errorf("document = %+v, want temperature from nothing to 19.0", doc.Twin)
	}
	if e.notified.Load() == 0 {
		t.Error("EdgeHub was not notified of the reports")
	}
	checkFirstReports(t, e.pending())

	m.send(dev(OpTwinGet), `{"event_id":"g1","timestamp":2}`)
	var got Result
	m.await(dev(OpTwinGetResult), &got)
	if got.EventID != "g1" || got.Version != "v1" || *got.Twin["power"].Expected.Value != "true" || got.Twin["power"].Actual != nil ||
		*got.Twin["temperature"].Actual.Value != "19.0" || got.Twin["temperature"].Metadata.Type != "float" {
		t.Errorf("twin/get result = %+v", got)
	}

	e.putDevice("thermo", "v2", thermostat("u1", new("22"), new("true")))
	m.await(dev(OpTwinUpdateDelta), &delta)
	if delta.Version != "v2" || delta.Delta["setpoint"] != "22" || delta.Delta["power"] != "true" {
		t.Errorf("delta after the change = %+v, want setpoint 22 at v2", delta)
	}

	// The counter is bumped after the bus took the delta, which may be after the mapper got it.
	eventually(t, "two deltas counted", func() bool { return e.twin.Stats().DeltasSent == 2 })
	if s := e.twin.Stats(); s.Devices != 1 || s.ReportsAccepted != 2 {
		t.Errorf("stats = %+v", s)
	}
}

// eventually waits, a bounded time, for cond to hold.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("not within %s: %s", waitFor, what)
		}
	}
}

func checkFirstReports(t *testing.T, pending []wire.Report) {
	t.Helper()
	if len(pending) != 2 {
		t.Fatalf("pending = %+v, want two reports", pending)
	}
	for _, p := range pending {
		var rep wire.TwinReport
		if err := json.Unmarshal(p.Body, &rep); err != nil || p.Kind != wire.ReportKindDeviceTwin || p.Name != "thermo" {
			t.Fatalf("report %+v: %v", p, err)
		}
		if rep.Property == "setpoint" && (!rep.Synced || rep.Version != "v1" || *rep.Desired != "21.5") {
			t.Errorf("setpoint report = %+v, want it to acknowledge 21.5 of v1", rep)
		}
		if rep.Property == "temperature" && (rep.Synced || rep.Value != "19.0" || rep.Timestamp != 1767225600000) {
			t.Errorf("temperature report = %+v", rep)
		}
	}
}

func TestAMapperReportsStateListsMembersAndSeesADeviceGo(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	var members MembershipUpdated
	m.await(NodeTopic(node, OpMembershipUpdated), &members)

	m.send(dev(OpStateUpdate), `{"event_id":"s1","timestamp":3,"state":"online"}`)
	var st StateResult
	m.await(dev(OpStateUpdateResult), &st)
	if st.EventID != "s1" || st.Code != 0 || st.Device == nil || st.Device.State != "online" {
		t.Errorf("state result = %+v", st)
	}
	if !slices.ContainsFunc(e.pending(), func(r wire.Report) bool { return r.Kind == wire.ReportKindDeviceState }) {
		t.Error("no DeviceState report is pending")
	}

	m.send(NodeTopic(node, OpMembershipGet), `{"event_id":"m1","timestamp":4}`)
	var list MembershipResult
	m.await(NodeTopic(node, OpMembershipGetResult), &list)
	if list.EventID != "m1" || len(list.Devices) != 1 || list.Devices[0].State != "online" || list.Devices[0].Model != "thermostat" {
		t.Errorf("membership/get result = %+v", list)
	}

	e.deleteDevice("thermo")
	m.await(NodeTopic(node, OpMembershipUpdated), &members)
	if len(members.Removed) != 1 || members.Removed[0].ID != "default/thermo" {
		t.Errorf("membership/updated = %+v, want thermo removed", members)
	}
	if tw := e.twins(); len(tw) != 0 {
		t.Errorf("the deleted device's twins are still stored: %+v", tw)
	}
	if s := e.twin.Stats(); s.Devices != 0 || s.StatesAccepted != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestValuesThatDoNotFitTheModelAreRefusedByNameAndTheOthersAccepted(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	m.send(dev(OpTwinUpdate), `{"event_id":"e1","twin":{"temperature":{"actual":{"value":"100"}},"setpoint":{"actual":{"value":"warm"}},`+
		`"humidity":{"actual":{"value":"40"}},"power":{"actual":{"value":"false"}}}}`)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	if res.Code != CodeBadRequest || len(res.Twin) != 1 || res.Twin["power"] == nil {
		t.Fatalf("result = %+v, want a 400 with power accepted", res)
	}
	for _, p := range []string{`"temperature"`, `"setpoint"`, `"humidity"`} {
		if !strings.Contains(res.Reason, p) {
			t.Errorf("reason %q does not name %s", res.Reason, p)
		}
	}
	if p := e.pending(); len(p) != 1 || !strings.Contains(string(p[0].Body), `"power"`) {
		t.Errorf("pending = %+v, want power's report alone", p)
	}
	s := e.twin.Stats()
	if s.ReportsAccepted != 1 || s.ReportsRefused["ValueOutOfRange"] != 1 || s.ReportsRefused["InvalidValue"] != 1 ||
		s.ReportsRefused["UnknownProperty"] != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestGarbagePayloadsGetErrorResultsAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", new("20"), nil))
	m.send(dev(OpTwinUpdate), `{"event_id":"ok","twin":{"setpoint":{"actual":{"value":"20"}}}}`)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	twinsBefore, pendingBefore := e.twins(), e.pending()

	tests := []struct {
		name, topic, payload string
		code                 int
		eventID              string
	}{
		{"a payload that is not JSON is a 400", dev(OpTwinUpdate), `setpoint=21`, 400, ""},
		{"a value of the wrong JSON type is a 400", dev(OpTwinUpdate), `{"event_id":"t","twin":{"setpoint":{"actual":{"value":21}}}}`, 400, "t"},
		{"an update of an unknown device is a 404", DeviceTopic("default", "ghost", OpTwinUpdate),
			`{"event_id":"g","twin":{"setpoint":{"actual":{"value":"21"}}}}`, 404, "g"},
		{"an oversize payload is a 400", dev(OpTwinUpdate), `{"event_id":"big","twin":{"setpoint":{"actual":{"value":"` +
			strings.Repeat("9", MaxPayloadSize) + `"}}}}`, 400, ""},
		{"a bad property name is a 400", dev(OpTwinUpdate), `{"event_id":"n","twin":{"set point":{"actual":{"value":"21"}}}}`, 400, "n"},
		{"an update that sets expected is a 409", dev(OpTwinUpdate),
			`{"event_id":"x","twin":{"setpoint":{"expected":{"value":"25"},"actual":{"value":"21"}}}}`, 409, "x"},
		{"an unknown state is a 400", dev(OpStateUpdate), `{"event_id":"s","state":"sleepy"}`, 400, "s"},
		{"a state of an unknown device is a 404", DeviceTopic("default", "ghost", OpStateUpdate), `{"event_id":"s2","state":"ok"}`, 404, "s2"},
		{"a twin/get of an unknown device is a 404", DeviceTopic("default", "ghost", OpTwinGet), `{"event_id":"g2"}`, 404, "g2"},
		{"a twin/get that is not JSON is a 400", dev(OpTwinGet), `?`, 400, ""},
		{"a membership/get that is not JSON is a 400", NodeTopic(node, OpMembershipGet), `[]`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.t = t
			m.send(tt.topic, tt.payload)
			var r struct {
				BaseMessage
				Code   int    `json:"code"`
				Reason string `json:"reason"`
				// The other fields of the results, unused here.
				Version string                      `json:"version"`
				Twin    map[string]*MsgTwin         `json:"twin"`
				Devices []MembershipDevice          `json:"devices"`
				Device  *DeviceStatus               `json:"device"`
				Extra   map[string]*json.RawMessage `json:"-"`
			}
			m.await(tt.topic+"/result", &r)
			if r.Code != tt.code || r.Reason == "" {
				t.Errorf("result = %d %q, want %d with a reason", r.Code, r.Reason, tt.code)
			}
			if tt.eventID != "" && r.EventID != tt.eventID {
				t.Errorf("event_id = %q, want %q echoed", r.EventID, tt.eventID)
			}
		})
	}
	m.t = t
	if tw := e.twins(); !twinsEqual(tw, twinsBefore) {
		t.Errorf("garbage changed the twins:\nbefore %+v\nafter  %+v", twinsBefore, tw)
	}
	if p := e.pending(); len(p) != len(pendingBefore) || p[0].Seq != pendingBefore[0].Seq {
		t.Errorf("garbage changed the outbox: %+v, was %+v", p, pendingBefore)
	}
}

func twinsEqual(a, b []meta.Twin) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// edgecore restarts with no cloud: the devices and twins come back from SQLite, and the mapper
// gets a delta for what it has not reported yet.
func TestARestartWithoutTheCloudRestoresTwinsAndResendsDeltas(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", new("21.5"), new("true")))
	m.send(dev(OpTwinUpdate), `{"event_id":"e1","twin":{"power":{"actual":{"value":"true"}}}}`)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	m.send(dev(OpStateUpdate), `{"event_id":"s1","state":"ok"}`)
	var st StateResult
	m.await(dev(OpStateUpdateResult), &st)

	m = e.restart()
	var delta Delta
	m.await(dev(OpTwinUpdateDelta), &delta)
	if len(delta.Delta) != 1 || delta.Delta["setpoint"] != "21.5" || delta.Version != "v1" {
		t.Errorf("delta after the restart = %+v, want setpoint alone (power is reported)", delta)
	}
	m.send(dev(OpTwinGet), `{"event_id":"g"}`)
	m.await(dev(OpTwinGetResult), &res)
	if res.Twin["power"].Actual == nil || *res.Twin["power"].Actual.Value != "true" {
		t.Errorf("twin/get after the restart = %+v, want power reported true", res.Twin)
	}
	m.send(NodeTopic(node, OpMembershipGet), `{"event_id":"m"}`)
	var list MembershipResult
	m.await(NodeTopic(node, OpMembershipGetResult), &list)
	if len(list.Devices) != 1 || list.Devices[0].State != "ok" {
		t.Errorf("membership after the restart = %+v", list.Devices)
	}
	if p := e.pending(); len(p) != 2 {
		t.Errorf("pending after the restart = %+v, want the power and state reports", p)
	}
	if s := e.twin.Stats(); s.Devices != 1 {
		t.Errorf("stats after the restart = %+v", s)
	}
	// And it serves reports as before.
	m.send(dev(OpTwinUpdate), `{"event_id":"e2","twin":{"setpoint":{"actual":{"value":"21.5"}}}}`)
	m.await(dev(OpTwinUpdateResult), &res)
	if res.Code != 0 {
		t.Errorf("a report after the restart: %+v", res)
	}
}

// Crash point (a): EdgeHub stored a device, then edgecore died before DeviceTwin heard of it
// (or of a delete). At the next start the twins follow the objects table.
func TestACrashAfterStoringADeviceBeforeTheListenerRanIsRepairedAtStart(t *testing.T) {
	e := newEnv(t)
	e.putDevice("gone", "v1", thermostat("u0", nil, nil))
	body, _ := json.Marshal(thermostat("u1", new("10"), nil))
	if err := e.store.PutObject(wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "thermo", Version: "v1"}, body); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteObject(wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "gone"}); err != nil {
		t.Fatal(err)
	}

	m := e.restart()
	var delta Delta
	m.await(dev(OpTwinUpdateDelta), &delta)
	if delta.Delta["setpoint"] != "10" {
		t.Errorf("delta = %+v, want setpoint 10", delta)
	}
	for _, tw := range e.twins() {
		if tw.Name != "thermo" {
			t.Errorf("a twin of %s is left after its device was deleted", tw.Name)
		}
	}
	if n := len(e.twins()); n != 3 {
		t.Errorf("%d twins stored, want thermo's 3", n)
	}
}

// Crash point (b): a mapper report arrived and the outbox commit failed. The mapper gets a 500,
// nothing changed, and its retry is accepted.
func TestAFailedOutboxCommitAnswers500AndChangesNothingAndTheRetryIsAccepted(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", new("10"), nil))
	e.twin.mu.Lock()
	e.twin.beforeCommit = func() error { return errors.New("disk full") }
	e.twin.mu.Unlock()
	twinsBefore := e.twins()

	report := `{"event_id":"e1","twin":{"setpoint":{"actual":{"value":"10"}}}}`
	m.send(dev(OpTwinUpdate), report)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	if res.Code != CodeInternal || res.EventID != "e1" {
		t.Fatalf("result = %+v, want a 500", res)
	}
	m.send(dev(OpStateUpdate), `{"event_id":"s1","state":"online"}`)
	var st StateResult
	m.await(dev(OpStateUpdateResult), &st)
	if st.Code != CodeInternal {
		t.Fatalf("state result = %+v, want a 500", st)
	}
	last, _ := e.store.LastSeq()
	if !twinsEqual(e.twins(), twinsBefore) || len(e.pending()) != 0 || last != 0 {
		t.Errorf("a failed commit changed something: twins %+v, pending %+v, last seq %d", e.twins(), e.pending(), last)
	}
	m.send(dev(OpTwinGet), `{"event_id":"g"}`)
	m.await(dev(OpTwinGetResult), &res)
	if res.Twin["setpoint"].Actual != nil {
		t.Errorf("the refused value is in memory: %+v", res.Twin["setpoint"])
	}

	e.twin.mu.Lock()
	e.twin.beforeCommit = nil
	e.twin.mu.Unlock()
	m.send(dev(OpTwinUpdate), report)
	var retry Result
	m.await(dev(OpTwinUpdateResult), &retry)
	if retry.Code != 0 || len(e.pending()) != 1 {
		t.Errorf("retry: result %+v, pending %+v; want it accepted and queued once", retry, e.pending())
	}
	if s := e.twin.Stats(); s.ReportsRefused[RefusedStoreFailed] != 2 || s.ReportsAccepted != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// Crash point (c): EdgeHub sent a batch, a newer value of one property arrived meanwhile, the
// cloud acknowledged part of the batch, and edgecore restarted. The newest value of every
// property is pending exactly once.
func TestARestartDuringAnOutboxDrainKeepsTheNewestValuePerPropertyOnce(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("thermo", "v1", thermostat("u1", nil, nil))
	var res Result
	m.send(dev(OpTwinUpdate), `{"event_id":"e1","twin":{"temperature":{"actual":{"value":"1"}},"setpoint":{"actual":{"value":"10"}}}}`)
	m.await(dev(OpTwinUpdateResult), &res)
	batch := e.pending() // what EdgeHub sends
	if len(batch) != 2 {
		t.Fatalf("batch = %+v", batch)
	}
	m.send(dev(OpTwinUpdate), `{"event_id":"e2","twin":{"temperature":{"actual":{"value":"2"}}}}`)
	m.await(dev(OpTwinUpdateResult), &res)

	// Restarted before any ack: both properties, the newest value of each, once.
	e.restart()
	if got := pendingValues(t, e.pending()); len(got) != 2 || !slices.Equal(got["temperature"], []string{"2"}) ||
		!slices.Equal(got["setpoint"], []string{"10"}) {
		t.Errorf("pending after the restart = %v, want temperature 2 and setpoint 10, once each", got)
	}
	// The cloud acknowledged the batch's first report (setpoint) only, then edgecore restarted.
	if batch[0].Seq != 1 || !strings.Contains(string(batch[0].Body), `"setpoint"`) {
		t.Fatalf("batch[0] = %+v, want setpoint first", batch[0])
	}
	if err := e.store.Ack(batch[0].Seq); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if got := pendingValues(t, e.pending()); len(got) != 1 || !slices.Equal(got["temperature"], []string{"2"}) {
		t.Errorf("pending after the partial ack and a restart = %v, want temperature 2 once", got)
	}
}

// pendingValues maps each property with a pending twin report to its pending values.
func pendingValues(t *testing.T, pending []wire.Report) map[string][]string {
	t.Helper()
	values := map[string][]string{}
	for _, p := range pending {
		var rep wire.TwinReport
		if err := json.Unmarshal(p.Body, &rep); err != nil {
			t.Fatal(err)
		}
		values[rep.Property] = append(values[rep.Property], rep.Value)
	}
	return values
}

func TestMembershipChangesAreAnnouncedOnceEach(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	e.putDevice("a", "v1", thermostat("ua", nil, nil))
	var up MembershipUpdated
	m.await(NodeTopic(node, OpMembershipUpdated), &up)
	if len(up.Added) != 1 || up.Added[0].ID != "default/a" {
		t.Fatalf("first update = %+v", up)
	}
	// A re-created device (another UID) is removed and added, and loses the old values.
	m.send(DeviceTopic("default", "a", OpTwinUpdate), `{"twin":{"temperature":{"actual":{"value":"5"}}}}`)
	m.await(DeviceTopic("default", "a", OpTwinUpdateResult), &Result{})
	e.putDevice("a", "v2", thermostat("ua2", nil, nil))
	m.await(NodeTopic(node, OpMembershipUpdated), &up)
	if len(up.Added) != 1 || len(up.Removed) != 1 || up.Added[0].Twin["temperature"].Actual != nil {
		t.Errorf("update for a re-created device = %+v", up)
	}
	// Stored again with the same UID, the device is not announced again.
	e.putDevice("a", "v3", thermostat("ua2", new("7"), nil))
	var delta Delta
	m.await(DeviceTopic("default", "a", OpTwinUpdateDelta), &delta)
	m.mu.Lock()
	extra := len(m.got[NodeTopic(node, OpMembershipUpdated)])
	m.mu.Unlock()
	if extra != 0 {
		t.Errorf("%d membership updates for a changed device, want none", extra)
	}
}

func TestPublishErrorsAreCountedAndResendRepublishesDeltas(t *testing.T) {
	e := newEnv(t)
	m := newMapper(t, e.bus)
	failed := make(chan struct{}, 1)
	e.bus.mu.Lock()
	e.bus.fail = func(topic string) bool {
		if !strings.HasSuffix(topic, OpTwinUpdateDelta) {
			return false
		}
		select {
		case failed <- struct{}{}:
		default:
		}
		return true
	}
	e.bus.mu.Unlock()
	e.putDevice("thermo", "v1", thermostat("u1", new("12"), nil))
	select {
	case <-failed:
	case <-time.After(waitFor):
		t.Fatal("the delta was never published")
	}
	e.bus.mu.Lock()
	e.bus.fail = nil
	e.bus.mu.Unlock()
	e.twin.Resend()
	var delta Delta
	m.await(dev(OpTwinUpdateDelta), &delta)
	if delta.Delta["setpoint"] != "12" {
		t.Errorf("delta = %+v", delta)
	}
	eventually(t, "the failed delta counted", func() bool { return e.twin.Stats().PublishErrors > 0 })
}

func TestNewRefusesAConfigItCannotServe(t *testing.T) {
	store, err := meta.Open(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, cfg := range []Config{
		{NodeName: "", Store: store, Bus: newMemBus()},
		{NodeName: "a/b", Store: store, Bus: newMemBus()},
		{NodeName: "n", Bus: newMemBus()},
		{NodeName: "n", Store: store},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
