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
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// The kinds of device the simulator plays. A device's kind follows from its properties' names
// and types, so that a DeviceModel written for a real thermostat is simulated as one without
// any simulator-specific setting.
const (
	KindThermostat = "thermostat"
	KindCounter    = "counter"
	KindSwitch     = "switch"
	KindGeneric    = "generic"
)

// The thermostat's physics, such as they are.
const (
	// ambient is where a thermostat's temperature starts, and where it drifts when powered off.
	ambient = 18.0
	// defaultSetpoint is a thermostat's setpoint until it is told one.
	defaultSetpoint = 21.0
	// heatRate is the part of the gap to the target the temperature closes each tick when
	// heating, coolRate when powered off (a room cools slower than a heater heats it).
	heatRate = 0.3
	coolRate = 0.1
	// noise is the largest random change added to the temperature each tick, either way.
	noise = 0.1
)

// kind is how one device behaves between deltas. Every kind applies desired values the same
// way (the device takes the value, and reports it); kinds differ in their starting values and in
// what one tick does.
type kind interface {
	// String names the kind, one of the Kind constants.
	String() string
	// start gives the kind's own properties a value where the device has none yet.
	start(d *device)
	// step advances the device by one tick.
	step(d *device, r *rand.Rand)
}

// detectKind chooses the kind from the device's properties: a thermostat has a numeric
// temperature and a numeric setpoint; a counter has an integer property named count (or
// counter, or ending in count); a switch has a boolean property and no temperature; anything
// else is generic. The first that fits wins, in that order.
func detectKind(d *device) kind {
	if d.numeric("temperature") && d.numeric("setpoint") {
		return thermostat{}
	}
	props := d.properties()
	for _, p := range props {
		if isCountName(p) && d.integer(p) {
			return counter{prop: p}
		}
	}
	if _, ok := d.types["temperature"]; !ok {
		var bools []string
		for _, p := range props {
			if d.boolean(p) {
				bools = append(bools, p)
			}
		}
		if len(bools) > 0 {
			return switchKind{props: bools}
		}
	}
	return generic{}
}

func isCountName(p string) bool {
	l := strings.ToLower(p)
	return l == "count" || l == "counter" || strings.HasSuffix(l, "count") || strings.HasSuffix(l, "_counter")
}

// thermostat heats toward its setpoint while powered (or when it has no power property) and
// cools toward the ambient temperature when not.
type thermostat struct{}

func (thermostat) String() string { return KindThermostat }

func (thermostat) start(d *device) {
	d.setDefault("temperature", d.formatNumber("temperature", ambient))
	d.setDefault("setpoint", d.formatNumber("setpoint", defaultSetpoint))
	if _, ok := d.types["power"]; ok && d.boolean("power") {
		d.setDefault("power", "true")
	}
}

func (thermostat) step(d *device, r *rand.Rand) {
	temp, ok := d.number("temperature")
	if !ok {
		return
	}
	target, rate := ambient, coolRate
	if on, known := d.boolValue("power"); !known || on {
		setpoint, ok := d.number("setpoint")
		if !ok {
			return
		}
		target, rate = setpoint, heatRate
	}
	next := temp + rate*(target-temp) + (2*r.Float64()-1)*noise
	d.values["temperature"] = d.formatNumber("temperature", d.clamp("temperature", next))
}

// counter counts up by one each tick; a desired value sets it, and it counts on from there.
type counter struct{ prop string }

func (counter) String() string { return KindCounter }

func (c counter) start(d *device) { d.setDefault(c.prop, "0") }

func (c counter) step(d *device, _ *rand.Rand) {
	n, ok := d.number(c.prop)
	if !ok {
		return
	}
	next := math.Round(n) + 1
	if lim := d.limits[c.prop]; lim.max != nil && next > *lim.max {
		// Past the model's maximum the edge would refuse the value: wrap around.
		next = 0
		if lim.min != nil {
			next = *lim.min
		}
	}
	d.values[c.prop] = strconv.FormatInt(int64(next), 10)
}

// switchKind holds the state it was told, and starts off.
type switchKind struct{ props []string }

func (switchKind) String() string { return KindSwitch }

func (s switchKind) start(d *device) {
	for _, p := range s.props {
		d.setDefault(p, "false")
	}
}

func (switchKind) step(*device, *rand.Rand) {}

// generic echoes desired values and does nothing else.
type generic struct{}

func (generic) String() string           { return KindGeneric }
func (generic) start(*device)            {}
func (generic) step(*device, *rand.Rand) {}

// The model's property types the kinds look for.
const (
	typeInt     = "int"
	typeBoolean = "boolean"
)

// numericTypes are the model's number types.
var numericTypes = []string{typeInt, "float", "double"}

// numeric says whether property p holds numbers: by its type when the twin says it, or else by
// its current value (a missing value counts, so that a twin without metadata does not stop a
// thermostat from being one).
func (d *device) numeric(p string) bool {
	t, ok := d.types[p]
	if !ok {
		return false
	}
	if t != "" {
		return slices.Contains(numericTypes, t)
	}
	v, has := d.values[p]
	if !has {
		return true
	}
	_, err := strconv.ParseFloat(v, 64)
	return err == nil
}

// integer says whether property p holds integers.
func (d *device) integer(p string) bool {
	t, ok := d.types[p]
	if !ok {
		return false
	}
	if t != "" {
		return t == typeInt
	}
	v, has := d.values[p]
	if !has {
		return true
	}
	_, err := strconv.ParseInt(v, 10, 64)
	return err == nil
}

// boolean says whether property p holds booleans; without a type, only by a boolean value.
func (d *device) boolean(p string) bool {
	t, ok := d.types[p]
	if !ok {
		return false
	}
	if t != "" {
		return t == typeBoolean
	}
	_, err := strconv.ParseBool(d.values[p])
	return err == nil
}

// number is p's current value as a number.
func (d *device) number(p string) (float64, bool) {
	v, ok := d.values[p]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// boolValue is p's current value as a boolean; known is false when p has no boolean value.
func (d *device) boolValue(p string) (value, known bool) {
	v, ok := d.values[p]
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, false
	}
	return b, true
}

// formatNumber writes v as property p's type wants it: an int rounded, other numbers to two
// decimals at most.
func (d *device) formatNumber(p string, v float64) string {
	if d.types[p] == typeInt {
		return strconv.FormatInt(int64(math.Round(v)), 10)
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// clamp keeps v within p's minimum and maximum, when they are known.
func (d *device) clamp(p string, v float64) float64 {
	lim := d.limits[p]
	if lim.min != nil {
		v = math.Max(v, *lim.min)
	}
	if lim.max != nil {
		v = math.Min(v, *lim.max)
	}
	return v
}

func (d *device) setDefault(p, v string) {
	if _, ok := d.values[p]; !ok {
		d.values[p] = v
	}
}
