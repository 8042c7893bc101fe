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
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// twinsOf makes membership twins from property types ("" for a twin without metadata) and
// actual values.
func twinsOf(types map[string]string, actual map[string]string) map[string]*msgTwin {
	twins := map[string]*msgTwin{}
	for p, typ := range types {
		tw := &msgTwin{}
		if typ != "" {
			tw.Metadata = &typeMetadata{Type: typ}
		}
		if v, ok := actual[p]; ok {
			tw.Actual = &value{Value: new(v)}
		}
		twins[p] = tw
	}
	return twins
}

func learnedDevice(types, actual map[string]string) *device {
	d := newDevice(membershipDevice{ID: "default/d", Namespace: "default", Name: "d"})
	d.learn(twinsOf(types, actual))
	return d
}

func TestKindDetection(t *testing.T) {
	tests := []struct {
		name   string
		types  map[string]string
		actual map[string]string
		want   string
	}{
		{"a thermostat with power", map[string]string{"temperature": "float", "setpoint": "double", "power": "boolean"}, nil, KindThermostat},
		{"a thermostat without power", map[string]string{"temperature": "int", "setpoint": "int"}, nil, KindThermostat},
		{"a thermostat whose twins have no types, by its values",
			map[string]string{"temperature": "", "setpoint": ""}, map[string]string{"temperature": "20.5", "setpoint": "21"}, KindThermostat},
		{"a temperature without a setpoint is a sensor", map[string]string{"temperature": "float"}, nil, KindGeneric},
		{"a setpoint that is not a number", map[string]string{"temperature": "float", "setpoint": "string"}, nil, KindGeneric},
		{"a temperature with a boolean is not a switch", map[string]string{"temperature": "float", "power": "boolean"}, nil, KindGeneric},
		{"a switch", map[string]string{"power": "boolean"}, nil, KindSwitch},
		{"a lamp with a brightness is a switch", map[string]string{"on": "boolean", "brightness": "int"}, nil, KindSwitch},
		{"an untyped boolean makes a switch by its value", map[string]string{"on": ""}, map[string]string{"on": "true"}, KindSwitch},
		{"a counter", map[string]string{"count": "int"}, nil, KindCounter},
		{"a counter by a name ending in count", map[string]string{"packetCount": "int"}, nil, KindCounter},
		{"a counter with a power switch is a counter", map[string]string{"count": "int", "power": "boolean"}, nil, KindCounter},
		{"a count that is not an integer", map[string]string{"count": "float"}, nil, KindGeneric},
		{"an untyped count holding a number", map[string]string{"count": ""}, map[string]string{"count": "3"}, KindCounter},
		{"an untyped count holding a word", map[string]string{"count": ""}, map[string]string{"count": "many"}, KindGeneric},
		{"anything else", map[string]string{"humidity": "float", "label": "string"}, nil, KindGeneric},
		{"no properties", map[string]string{}, nil, KindGeneric},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := learnedDevice(tt.types, tt.actual).kind.String(); got != tt.want {
				t.Errorf("kind = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestKindsStartWithValuesOfTheirOwnAndKeepReportedOnes(t *testing.T) {
	tests := []struct {
		name   string
		types  map[string]string
		actual map[string]string
		want   map[string]string
	}{
		{"a thermostat starts at the ambient temperature, its default setpoint, powered",
			map[string]string{"temperature": "float", "setpoint": "double", "power": "boolean"}, nil,
			map[string]string{"temperature": "18", "setpoint": "21", "power": "true"}},
		{"a thermostat goes on from what it last reported",
			map[string]string{"temperature": "float", "setpoint": "double"}, map[string]string{"temperature": "23.4", "setpoint": "24"},
			map[string]string{"temperature": "23.4", "setpoint": "24"}},
		{"a switch starts off", map[string]string{"power": "boolean", "on": "boolean"}, nil,
			map[string]string{"power": "false", "on": "false"}},
		{"a counter starts at zero", map[string]string{"count": "int"}, nil, map[string]string{"count": "0"}},
		{"a generic device has nothing to say until told", map[string]string{"label": "string"}, nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := learnedDevice(tt.types, tt.actual)
			if len(d.values) != len(tt.want) {
				t.Errorf("values = %v, want %v", d.values, tt.want)
			}
			for p, v := range tt.want {
				if d.values[p] != v {
					t.Errorf("%s = %q, want %q", p, d.values[p], v)
				}
			}
		})
	}
}

func temperatureOf(t *testing.T, d *device) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(d.values["temperature"], 64)
	if err != nil {
		t.Fatalf("temperature %q: %v", d.values["temperature"], err)
	}
	return f
}

func TestAThermostatDriftsTowardItsTarget(t *testing.T) {
	tests := []struct {
		name   string
		power  string
		start  float64
		target float64
		rate   float64
	}{
		{"powered, it heats toward the setpoint", "true", 18, 25, heatRate},
		{"powered, it cools toward a lower setpoint", "true", 25, 10, heatRate},
		{"powered off, it cools toward the ambient temperature", "false", 25, ambient, coolRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := learnedDevice(map[string]string{"temperature": "float", "setpoint": "double", "power": "boolean"},
				map[string]string{"temperature": strconv.FormatFloat(tt.start, 'f', -1, 64), "setpoint": "25", "power": tt.power})
			if tt.power == "true" {
				d.desire("setpoint", strconv.FormatFloat(tt.target, 'f', -1, 64))
			}
			r := rand.New(rand.NewPCG(1, 2))
			gap := math.Abs(tt.target - tt.start)
			for i := range 100 {
				d.kind.step(d, r)
				next := math.Abs(tt.target - temperatureOf(t, d))
				// Far from the target the drift outweighs the noise: every step gets closer.
				if gap > 1 && next >= gap {
					t.Fatalf("step %d: %.2f from the target, was %.2f", i, next, gap)
				}
				gap = next
			}
			// Near it the noise keeps it within noise/rate: each step takes rate of the gap
			// off and adds at most noise.
			if gap > noise/tt.rate+0.01 {
				t.Errorf("after 100 steps the temperature is %.2f from the target %.1f", gap, tt.target)
			}
		})
	}
}

func TestAThermostatIsDeterministicForASeedAndKeepsItsTypeAndLimits(t *testing.T) {
	run := func(types map[string]string, limit *typeMetadata) []string {
		twins := twinsOf(types, map[string]string{"temperature": "18", "setpoint": "30"})
		if limit != nil {
			twins["temperature"].Metadata = limit
		}
		d := newDevice(membershipDevice{ID: "default/d", Namespace: "default", Name: "d"})
		d.learn(twins)
		r := rand.New(rand.NewPCG(7, 7))
		seen := make([]string, 0, 30)
		for range 30 {
			d.kind.step(d, r)
			seen = append(seen, d.values["temperature"])
		}
		return seen
	}
	floats := map[string]string{"temperature": "float", "setpoint": "double"}
	a, b := run(floats, nil), run(floats, nil)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %s then %s from the same seed", i, a[i], b[i])
		}
	}
	for _, v := range run(map[string]string{"temperature": "int", "setpoint": "int"}, nil) {
		if _, err := strconv.Atoi(v); err != nil {
			t.Errorf("an int temperature reported as %q", v)
		}
	}
	for _, v := range run(floats, &typeMetadata{Type: "float", Maximum: new("26")}) {
		if f, _ := strconv.ParseFloat(v, 64); f > 26 {
			t.Errorf("temperature %s is above the maximum 26 the twin gave", v)
		}
	}
}

func TestACounterCountsAndADesiredValueSetsIt(t *testing.T) {
	d := learnedDevice(map[string]string{"count": "int"}, nil)
	var seen []string
	step := func(n int) {
		for range n {
			d.kind.step(d, nil)
			seen = append(seen, d.values["count"])
		}
	}
	step(3)
	d.desire("count", "10")
	step(2)
	want := []string{"1", "2", "3", "11", "12"}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("counts = %v, want %v", seen, want)
		}
	}

	twins := twinsOf(map[string]string{"count": "int"}, map[string]string{"count": "2"})
	twins["count"].Metadata = &typeMetadata{Type: "int", Minimum: new("1"), Maximum: new("3")}
	wrapped := newDevice(membershipDevice{ID: "default/w", Namespace: "default", Name: "w"})
	wrapped.learn(twins)
	wrapped.kind.step(wrapped, nil)
	wrapped.kind.step(wrapped, nil)
	if got := wrapped.values["count"]; got != "1" {
		t.Errorf("past a known maximum the count is %s, want it wrapped to the minimum 1", got)
	}
}

// TestEveryDesiredValueIsReportedBackWhateverTheKind sends a delta to a device of each kind and
// reads the report that follows: it carries every desired value as it came.
func TestEveryDesiredValueIsReportedBackWhateverTheKind(t *testing.T) {
	tests := []struct {
		kind  string
		types map[string]string
		delta map[string]string
	}{
		{KindThermostat, map[string]string{"temperature": "float", "setpoint": "double", "power": "boolean", "mode": "string"},
			map[string]string{"setpoint": "25.50", "power": "false", "mode": "eco"}},
		{KindSwitch, map[string]string{"power": "boolean", "color": "string"}, map[string]string{"power": "true", "color": "red"}},
		{KindCounter, map[string]string{"count": "int", "step": "int"}, map[string]string{"count": "42", "step": "2"}},
		{KindGeneric, map[string]string{"label": "string", "blob": "bytes"}, map[string]string{"label": "", "blob": "aGk="}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s := newTestSim(t)
			s.handle(nodeTopic(node, opMembershipUpdated), mustJSON(t, membershipUpdated{
				Added: []membershipDevice{{ID: "default/d", Namespace: "default", Name: "d", Protocol: DefaultProtocol,
					Twin: twinsOf(tt.types, nil)}}, Removed: []membershipDevice{}}))
			s.collect(false)
			s.handle(deviceTopic("default", "d", opTwinUpdateDelta), mustJSON(t, delta{Twin: twinsOf(tt.types, nil), Delta: tt.delta}))
			if snap, _ := deviceOf(s, "default/d"); snap.Kind != tt.kind {
				t.Fatalf("kind = %s, want %s", snap.Kind, tt.kind)
			}
			var report *twinUpdate
			for _, o := range s.collect(false) {
				if o.report {
					report = &twinUpdate{}
					if err := json.Unmarshal(o.payload, report); err != nil {
						t.Fatal(err)
					}
				}
			}
			if report == nil {
				t.Fatal("no report after the delta")
			}
			for p, v := range tt.delta {
				if got, ok := report.Twin[p]; !ok || got.Actual.Value != v {
					t.Errorf("%s reported as %+v, want %q", p, got, v)
				}
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestSim is a simulator that is not connected: the tests feed it messages with handle and
// take what it would publish with collect.
func newTestSim(t testing.TB) *Simulator {
	t.Helper()
	s, err := New(Config{Node: node, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
