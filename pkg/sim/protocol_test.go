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

package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/edge/twin"
)

// edgeFixture reads one of the payloads edge/twin's tests pin the protocol with: the simulator
// must read what edgecore writes.
func edgeFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "edge", "twin", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEdgecoresPayloadsAreRead feeds the simulator the fixtures of edgecore's protocol, in the
// order a session could bring them, and checks what each one did.
func TestEdgecoresPayloadsAreRead(t *testing.T) {
	s := newTestSim(t)
	s.cfg.Protocol = AllProtocols // the fixtures' devices are modbus devices
	dev := func(name, op string) string { return deviceTopic("default", name, op) }
	steps := []struct {
		fixture, topic string
		check          func() bool
	}{
		{"edge_membership_get_result.json", nodeTopic(node, opMembershipGetResult), func() bool {
			d, ok := deviceOf(s, "default/thermostat-1")
			return ok && d.Protocol == "modbus" && d.Desired["power"] == "false" && d.Values["power"] == "false"
		}},
		{"edge_twin_update_delta.json", dev("thermostat-1", opTwinUpdateDelta), func() bool {
			d, _ := deviceOf(s, "default/thermostat-1")
			return d.Deltas == 1 && d.Values["power"] == "false" && findEvent(s, EventDelta, "default/thermostat-1", "power=false")
		}},
		{"edge_twin_update_result.json", dev("thermostat-1", opTwinUpdateResult), func() bool { return s.Stats().ResultErrors == 0 }},
		{"edge_state_update_result.json", dev("thermostat-1", opStateUpdateResult), func() bool { return s.Stats().ResultErrors == 0 }},
		{"edge_twin_update_result_error.json", dev("thermostat-1", opTwinUpdateResult), func() bool {
			return s.Stats().ResultErrors == 1 && findEvent(s, EventResultError, "default/thermostat-1", "code=409")
		}},
		{"edge_membership_updated.json", nodeTopic(node, opMembershipUpdated), func() bool {
			_, one := deviceOf(s, "default/thermostat-1")
			_, two := deviceOf(s, "default/thermostat-2")
			return !one && two && findEvent(s, EventRemoved, "default/thermostat-1", "")
		}},
	}
	for _, st := range steps {
		s.handle(st.topic, edgeFixture(t, st.fixture))
		if !st.check() {
			t.Errorf("after %s: devices %+v, events %+v", st.fixture, s.Snapshot(), s.Events())
		}
	}
	if g := s.Stats().Garbage; g != 0 {
		t.Errorf("%d of edgecore's payloads were taken for garbage: %+v", g, s.Events())
	}
}

// checkOutgoing fails unless edgecore would take every message: topics it routes, payloads its
// strict parsers accept.
func checkOutgoing(t testing.TB, out []outgoing) {
	t.Helper()
	for _, o := range out {
		_, _, op, ok := twin.ParseDeviceTopic(o.topic)
		if !ok {
			t.Fatalf("the simulator would publish on %q, which names no device", o.topic)
		}
		var err error
		switch op {
		case twin.OpTwinUpdate:
			_, err = twin.ParseUpdate(o.payload)
		case twin.OpStateUpdate:
			_, err = twin.ParseStateUpdate(o.payload)
		default:
			t.Fatalf("the simulator would publish on %q", o.topic)
		}
		if err != nil {
			t.Fatalf("edgecore would refuse %s on %s: %v", o.payload, o.topic, err)
		}
	}
}

func TestWhatTheSimulatorSendsIsWhatEdgecoreAccepts(t *testing.T) {
	s := newTestSim(t)
	s.handle(nodeTopic(node, opMembershipGetResult), []byte(`{"event_id":"m","devices":[
		{"id":"default/t","namespace":"default","name":"t","protocol":"simulator","twin":{
			"temperature":{"metadata":{"type":"float"}},"setpoint":{"expected":{"value":"24"},"metadata":{"type":"double"}},
			"power":{"metadata":{"type":"boolean"}}}},
		{"id":"default/s","namespace":"default","name":"s","protocol":"simulator","twin":{"on":{"metadata":{"type":"boolean"}}}},
		{"id":"default/c","namespace":"default","name":"c","protocol":"simulator","twin":{"count":{"metadata":{"type":"int"}}}},
		{"id":"default/g","namespace":"default","name":"g","protocol":"simulator","twin":{"label":{"expected":{"value":"x"}}}}]}`))
	first := s.collect(false)
	var states, reports int
	for _, o := range first {
		if o.online {
			states++
		}
		if o.report {
			reports++
		}
	}
	if states != 4 || reports != 4 {
		t.Errorf("first messages: %d states and %d reports, want 4 of each", states, reports)
	}
	checkOutgoing(t, first)
	checkOutgoing(t, s.collect(true))
}

// FuzzHandleMessage feeds the simulator any message on any topic, after a membership that gave
// it a device of each kind: it must not panic, and whatever it then publishes must be what
// edgecore accepts.
func FuzzHandleMessage(f *testing.F) {
	for _, name := range []string{"edge_membership_get_result.json", "edge_membership_updated.json", "edge_twin_update_delta.json",
		"edge_twin_update_result.json", "edge_twin_update_result_error.json", "edge_state_update_result.json"} {
		var topic string
		switch {
		case strings.Contains(name, "membership_get"):
			topic = nodeTopic(node, opMembershipGetResult)
		case strings.Contains(name, "membership_updated"):
			topic = nodeTopic(node, opMembershipUpdated)
		case strings.Contains(name, "delta"):
			topic = deviceTopic("default", "t", opTwinUpdateDelta)
		case strings.Contains(name, "state"):
			topic = deviceTopic("default", "t", opStateUpdateResult)
		default:
			topic = deviceTopic("default", "t", opTwinUpdateResult)
		}
		f.Add(topic, edgeFixture(f, name))
	}
	f.Add(deviceTopic("default", "c", opTwinUpdateDelta), []byte(`{"delta":{"count":"9","x y":"1"},"twin":{"count":null}}`))
	f.Add(nodeTopic(node, opMembershipUpdated), []byte(`{"added_devices":[{"id":"a/b","protocol":"simulator","twin":{"on":{}}}]}`))
	f.Add(deviceTopic("+", "#", opTwinUpdateDelta), []byte(`{"delta":{}}`))
	f.Add("", []byte("\x00"))
	membership := []byte(`{"devices":[
		{"id":"default/t","namespace":"default","name":"t","protocol":"simulator","twin":{
			"temperature":{"metadata":{"type":"float"}},"setpoint":{"metadata":{"type":"double"}},"power":{"metadata":{"type":"boolean"}}}},
		{"id":"default/c","namespace":"default","name":"c","protocol":"simulator","twin":{"count":{"metadata":{"type":"int"}}}}]}`)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		s := newTestSim(t)
		s.handle(nodeTopic(node, opMembershipGetResult), membership)
		s.collect(false)
		s.handle(topic, payload)
		checkOutgoing(t, s.collect(false))
		checkOutgoing(t, s.collect(true))
		_ = s.Snapshot()
	})
}
