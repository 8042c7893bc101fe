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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgetwin/edgetwin/edge/twin"
)

// near says whether value, a reported number, is within tolerance of want.
func near(value string, want, tolerance float64) bool {
	f, err := strconv.ParseFloat(value, 64)
	return err == nil && math.Abs(f-want) <= tolerance
}

// TestAThermostatReachesItsDesiredSetpointThroughARealDeviceTwin runs the simulator against
// edgecore's DeviceTwin, over a real broker and a real SQLite store: the desired setpoint
// reaches the simulator as a delta, comes back reported and synced, the temperature follows,
// a new setpoint is followed again, and the device's removal reaches the simulator.
func TestAThermostatReachesItsDesiredSetpointThroughARealDeviceTwin(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	s, logs := startSim(t, addr, nil)
	const name, id = "thermostat-1", "default/thermostat-1"

	e.put(name, "v1", thermostatDevice("u1", DefaultProtocol, new("25"), new("true")))
	eventually(t, "the edge holds setpoint 25 reported and synced for version v1", func() bool {
		r, ok := e.pendingReport(name, "setpoint")
		return ok && r.Value == "25" && r.Synced && r.Version == "v1"
	})
	eventually(t, "the edge holds power true reported", func() bool { return e.reported(name, "power") == "true" })
	eventually(t, "the edge holds the device online", func() bool { return e.state(name) == "online" })
	eventually(t, "the reported temperature reaches the setpoint", func() bool {
		return near(e.reported(name, "temperature"), 25, 0.5)
	})
	d, ok := deviceOf(s, id)
	if !ok || d.Kind != KindThermostat || d.Protocol != DefaultProtocol || d.Desired["setpoint"] != "25" || d.Deltas == 0 ||
		d.LastDelta == nil || !d.Online {
		t.Errorf("snapshot = %+v, want an online thermostat that got a delta for setpoint 25", d)
	}
	for _, line := range []string{"membership added=default/thermostat-1", "delta device=default/thermostat-1 power=true setpoint=25"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log has no line with %q", line)
		}
	}

	e.put(name, "v2", thermostatDevice("u1", DefaultProtocol, new("22"), new("true")))
	eventually(t, "a delta for setpoint 22 reaches the simulator", func() bool { return findEvent(s, EventDelta, id, "setpoint=22") })
	eventually(t, "the edge holds setpoint 22 synced for version v2", func() bool {
		r, ok := e.pendingReport(name, "setpoint")
		return ok && r.Value == "22" && r.Synced && r.Version == "v2"
	})
	eventually(t, "the temperature follows the new setpoint", func() bool {
		return near(e.reported(name, "temperature"), 22, 0.5)
	})

	e.delete(name)
	eventually(t, "the removal reaches the simulator", func() bool { return findEvent(s, EventRemoved, id, "") })
	if got := s.Snapshot(); len(got) != 0 {
		t.Errorf("snapshot after the removal = %+v, want no device", got)
	}
	if !strings.Contains(logs.String(), "membership removed=default/thermostat-1") {
		t.Errorf("the log has no membership line for the removal")
	}
	if st := s.Stats(); st.Garbage != 0 || st.ResultErrors != 0 {
		t.Errorf("stats = %+v: the edge's messages were not all read, or it refused a report", st)
	}
}

// TestASwitchHoldsWhatItIsToldAndACounterCountsOnFromItsDesiredValue drives both through
// DeviceTwin and changes their desired values.
func TestASwitchHoldsWhatItIsToldAndACounterCountsOnFromItsDesiredValue(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	s, _ := startSim(t, addr, nil)

	e.put("switch-1", "v1", switchDevice("u1", new("true")))
	e.put("counter-1", "v1", counterDevice("u2", new("100"), nil))
	eventually(t, "the switch reports power true, synced", func() bool {
		r, ok := e.pendingReport("switch-1", "power")
		return ok && r.Value == "true" && r.Synced
	})
	eventually(t, "the counter counts on from 100", func() bool {
		n, err := strconv.Atoi(e.reported("counter-1", "count"))
		return err == nil && n > 101
	})
	kinds := map[string]string{}
	for _, d := range s.Snapshot() {
		kinds[d.ID] = d.Kind
	}
	if kinds["default/switch-1"] != KindSwitch || kinds["default/counter-1"] != KindCounter {
		t.Errorf("kinds = %v, want a switch and a counter", kinds)
	}

	e.put("switch-1", "v2", switchDevice("u1", new("false")))
	e.put("counter-1", "v2", counterDevice("u2", new("7"), nil))
	eventually(t, "the switch reports power false for version v2, synced", func() bool {
		r, ok := e.pendingReport("switch-1", "power")
		return ok && r.Value == "false" && r.Synced && r.Version == "v2"
	})
	eventually(t, "the counter was reset to 7 and counts on", func() bool {
		n, err := strconv.Atoi(e.reported("counter-1", "count"))
		return err == nil && n > 7 && n < 100
	})
}

// TestOnlyDevicesOfItsProtocolAreDriven runs two simulators on one broker: one for the default
// protocol, one for every protocol.
func TestOnlyDevicesOfItsProtocolAreDriven(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	mine, _ := startSim(t, addr, nil)
	all, _ := startSim(t, addr, func(c *Config) { c.Protocol = AllProtocols; c.ClientID = "sim-all" })

	// The modbus device goes first: once the simulated one is seen, the modbus one's
	// membership was read before it.
	e.put("modbus-1", "v1", thermostatDevice("u1", "modbus", new("20"), nil))
	e.put("switch-1", "v1", switchDevice("u2", new("true")))
	eventually(t, "the default simulator drives the simulated device", func() bool {
		_, ok := deviceOf(mine, "default/switch-1")
		return ok
	})
	if _, ok := deviceOf(mine, "default/modbus-1"); ok || findEvent(mine, EventAdded, "default/modbus-1", "") {
		t.Errorf("the simulator for protocol %q took the modbus device", DefaultProtocol)
	}
	eventually(t, "the simulator for every protocol drives both", func() bool {
		_, modbus := deviceOf(all, "default/modbus-1")
		_, simulated := deviceOf(all, "default/switch-1")
		return modbus && simulated
	})
	eventually(t, "the modbus thermostat reports its desired setpoint through the other simulator", func() bool {
		return e.reported("modbus-1", "setpoint") == "20"
	})
}

// TestAnErrorResultIsLoggedAndTheSimulatorGoesOn lets a counter run past its model's maximum,
// which the simulator cannot know: DeviceTwin refuses the value with a 400, the simulator
// records it, and a desired value brings the counter back.
func TestAnErrorResultIsLoggedAndTheSimulatorGoesOn(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	s, logs := startSim(t, addr, nil)
	const id = "default/counter-1"

	e.put("counter-1", "v1", counterDevice("u1", new("0"), new("3")))
	eventually(t, "DeviceTwin's 400 reaches the simulator", func() bool { return findEvent(s, EventResultError, id, "code=400") })
	if !strings.Contains(logs.String(), "result-error device=default/counter-1 op=twin/update code=400") {
		t.Errorf("the log has no result-error line for the counter:\n%s", logs.String())
	}
	if n, err := strconv.Atoi(e.reported("counter-1", "count")); err != nil || n > 3 {
		t.Errorf("the edge holds count %q, want a value the model allows", e.reported("counter-1", "count"))
	}
	e.put("counter-1", "v2", counterDevice("u1", new("1"), new("3")))
	eventually(t, "the counter reports its new desired value 1, synced", func() bool {
		r, ok := e.pendingReport("counter-1", "count")
		return ok && r.Version == "v2" && r.Value == "1" && r.Synced
	})
}

// TestGarbageOnEverySubscribedTopicIsDroppedAndTheSimulatorGoesOn publishes what no edge would
// on each topic the simulator listens on, then checks it still follows a desired value.
func TestGarbageOnEverySubscribedTopicIsDroppedAndTheSimulatorGoesOn(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	s, logs := startSim(t, addr, nil)
	e.put("switch-1", "v1", switchDevice("u1", new("true")))
	eventually(t, "the switch reports power true", func() bool { return e.reported("switch-1", "power") == "true" })

	dev := func(op string) string { return deviceTopic("default", "switch-1", op) }
	garbage := []struct{ topic, payload string }{
		{nodeTopic(node, opMembershipUpdated), ""},
		{nodeTopic(node, opMembershipUpdated), "not json"},
		{nodeTopic(node, opMembershipUpdated), `{}`},
		{nodeTopic(node, opMembershipUpdated), `{"added_devices":[{"id":"default/#","namespace":"default","name":"#"}]}`},
		{nodeTopic(node, opMembershipUpdated), `{"removed_devices":[{"id":"default/switch-1","namespace":"other","name":"x"}]}`},
		{nodeTopic(node, opMembershipGetResult), `[1,2,3]`},
		{nodeTopic(node, opMembershipGetResult), `{}`},
		{nodeTopic(node, opMembershipGetResult), `{"devices":"all of them"}`},
		{dev(opTwinUpdateDelta), `{"delta":{"power":true}}`},
		{dev(opTwinUpdateDelta), `{"delta":{"power":"false"}} {"delta":{}}`},
		{dev(opTwinUpdateDelta), `{"twin":{}}`},
		{dev(opTwinUpdateDelta), "\x00\xff\xfe"},
		{dev(opTwinUpdateResult), `{"code":"four hundred"}`},
		{dev(opStateUpdateResult), `{"event_id":`},
	}
	c := connect(t, addr, "garbage")
	for _, g := range garbage {
		if err := c.Publish(g.topic, []byte(g.payload)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every garbage message is counted", func() bool { return s.Stats().Garbage == uint64(len(garbage)) })
	if _, ok := deviceOf(s, "default/switch-1"); !ok {
		t.Fatalf("the switch is gone after the garbage")
	}
	if findEvent(s, EventDelta, "default/switch-1", "power=false") {
		t.Errorf("a delta with data after the object was applied")
	}
	if n := strings.Count(logs.String(), " garbage topic="); n != len(garbage) {
		t.Errorf("the log has %d garbage lines, want %d", n, len(garbage))
	}

	e.put("switch-1", "v2", switchDevice("u1", new("false")))
	eventually(t, "the switch still follows its desired value", func() bool {
		r, ok := e.pendingReport("switch-1", "power")
		return ok && r.Value == "false" && r.Version == "v2" && r.Synced
	})
}

// TestAfterTheBrokerRestartsTheSimulatorSubscribesAndAsksForItsDevicesAgain ends the broker
// the simulator is connected to, as an edgecore restart ends its embedded broker with every
// session in it, and starts a new one on the same port, where the node's devices changed
// meanwhile. The new broker's inline client plays the edge: it answers membership/get.
func TestAfterTheBrokerRestartsTheSimulatorSubscribesAndAsksForItsDevicesAgain(t *testing.T) {
	first, addr := serveBroker(t, "127.0.0.1:0", nil)
	s, _ := startSim(t, addr, nil)
	added := `{"event_id":"e1","timestamp":1767225600000,"added_devices":[{"id":"default/switch-1","name":"switch-1",` +
		`"namespace":"default","model":"switch","protocol":"simulator","twin":{"power":{"metadata":{"type":"boolean"}}}}],"removed_devices":[]}`
	if err := first.Publish(nodeTopic(node, opMembershipUpdated), []byte(added), false, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the simulator drives switch-1", func() bool { _, ok := deviceOf(s, "default/switch-1"); return ok })
	first.Close()
	eventually(t, "the simulator sees the broker go", func() bool { return !s.Stats().Connected })

	reports := make(chan []byte, 100)
	serveBroker(t, addr, func(second *mqtt.Server) {
		answer := `{"event_id":"%s","timestamp":1767225700000,"devices":[{"id":"default/switch-2","name":"switch-2",` +
			`"namespace":"default","model":"switch","protocol":"simulator",` +
			`"twin":{"power":{"expected":{"value":"true"},"metadata":{"type":"boolean"}}}}]}`
		err := second.Subscribe(nodeTopic(node, opMembershipGet), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			var req baseMessage
			if json.Unmarshal(pk.Payload, &req) != nil {
				return
			}
			// Not from within the broker's delivery of the request.
			go func() {
				_ = second.Publish(nodeTopic(node, opMembershipGetResult), fmt.Appendf(nil, answer, req.EventID), false, 1)
			}()
		})
		if err != nil {
			t.Fatal(err)
		}
		err = second.Subscribe(deviceTopic("default", "switch-2", opTwinUpdate), 2, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			select {
			case reports <- slices.Clone(pk.Payload):
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	eventually(t, "the simulator reconnects", func() bool { return s.Stats().Connected })
	eventually(t, "switch-1, gone meanwhile, is removed", func() bool { return findEvent(s, EventRemoved, "default/switch-1", "") })
	eventually(t, "switch-2 is added", func() bool { return findEvent(s, EventAdded, "default/switch-2", "kind=switch") })
	select {
	case b := <-reports:
		u, err := twin.ParseUpdate(b)
		if err != nil {
			t.Fatalf("edgecore would refuse the report: %v\n%s", err, b)
		}
		if got := u.Twin["power"]; got == nil || *got.Actual.Value != "true" {
			t.Errorf("report = %s, want power true", b)
		}
	case <-time.After(waitFor):
		t.Fatalf("no report for switch-2 within %s", waitFor)
	}
}

// TestRunStopsRetryingWhenTheBrokerRefusesButRetriesOneItCannotReach: bad credentials would not
// get better by retrying, an edgecore that is not up yet does.
func TestRunStopsRetryingWhenTheBrokerRefusesButRetriesOneItCannotReach(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		// A broker without an auth hook lets nobody in.
		server := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		tcp := listeners.NewTCP(listeners.Config{ID: "test", Address: "127.0.0.1:0"})
		if err := server.AddListener(tcp); err != nil {
			t.Fatal(err)
		}
		if err := server.Serve(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Close() })
		s, err := New(Config{Broker: tcp.Address(), Node: node})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := s.Run(ctx); err == nil || ctx.Err() != nil {
			t.Errorf("Run = %v (context: %v), want the refusal before the deadline", err, ctx.Err())
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close() // nothing listens there now
		logs := &syncBuffer{}
		s, err := New(Config{Broker: addr, Node: node, Log: logs})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		eventually(t, "a second attempt", func() bool { return strings.Count(logs.String(), " unreachable ") >= 2 })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after the context ended = %v, want nil", err)
			}
		case <-time.After(waitFor):
			t.Fatalf("Run did not return within %s of the context's end", waitFor)
		}
	})
}

// TestOnShutdownTheDevicesGoOffline: a simulator that stops says so for its devices, so the
// cloud does not show them online with nobody behind them.
func TestOnShutdownTheDevicesGoOffline(t *testing.T) {
	addr := startBroker(t)
	e := startEdge(t, addr)
	s, err := New(Config{Broker: addr, Node: node, ReportInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.put("switch-1", "v1", switchDevice("u1", new("true")))
	eventually(t, "the switch is online", func() bool { return e.state("switch-1") == "online" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatalf("Run did not return within %s of the context's end", waitFor)
	}
	eventually(t, "the switch is offline", func() bool { return e.state("switch-1") == "offline" })
}
