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
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// limits are a property's minimum and maximum, when known.
type limits struct{ min, max *float64 }

// device is one simulated device.
type device struct {
	id, namespace, name string
	model, protocol     string

	// types are the property types by name, "" where a twin gave none; every property the
	// edge listed for the device has an entry.
	types  map[string]string
	limits map[string]limits
	// values are what the device currently has, and reports; desired are the last desired
	// values received.
	values  map[string]string
	desired map[string]string
	kind    kind

	deltas    uint64
	lastDelta time.Time
	// online is set once the broker took the device's "online" state.
	online bool
	// dirty asks for a report before the next tick: a desired value was applied.
	dirty bool
}

func newDevice(m membershipDevice) *device {
	return &device{
		id: m.ID, namespace: m.Namespace, name: m.Name, model: m.Model, protocol: m.Protocol,
		types: map[string]string{}, limits: map[string]limits{}, values: map[string]string{}, desired: map[string]string{},
		kind: generic{},
	}
}

// learn takes in the device's twins, which list every property of the device: their types, the
// reported values (where the device was before the simulator took it over), and the expected
// ones not applied yet. It returns the desired values it applied.
func (d *device) learn(twins map[string]*msgTwin) map[string]string {
	for p := range d.types {
		if len(twins) > 0 && twins[p] == nil {
			// The model lost the property: reporting it would be refused.
			delete(d.types, p)
			delete(d.limits, p)
			delete(d.values, p)
			delete(d.desired, p)
		}
	}
	var applied map[string]string
	for _, p := range slices.Sorted(maps.Keys(twins)) {
		t := twins[p]
		if t == nil || !propertyName.MatchString(p) {
			continue
		}
		if _, ok := d.types[p]; !ok {
			d.types[p] = ""
		}
		if t.Metadata != nil {
			if t.Metadata.Type != "" {
				d.types[p] = t.Metadata.Type
			}
			d.limits[p] = limits{min: parseLimit(t.Metadata.Minimum), max: parseLimit(t.Metadata.Maximum)}
		}
		if _, known := d.values[p]; !known && t.Actual != nil && t.Actual.Value != nil {
			d.values[p] = *t.Actual.Value
		}
		if t.Expected != nil && t.Expected.Value != nil {
			if last, ok := d.desired[p]; !ok || last != *t.Expected.Value {
				d.desire(p, *t.Expected.Value)
				if applied == nil {
					applied = map[string]string{}
				}
				applied[p] = *t.Expected.Value
			}
		}
	}
	if k := detectKind(d); k.String() != d.kind.String() {
		d.kind = k
	}
	d.kind.start(d)
	return applied
}

// desire applies a desired value: the device takes it, and reports it before the next tick.
func (d *device) desire(p, v string) {
	d.desired[p] = v
	d.values[p] = v
	d.dirty = true
}

// properties are the device's property names, sorted.
func (d *device) properties() []string { return slices.Sorted(maps.Keys(d.types)) }

// report is the twin/update of every current value.
func (d *device) report(base baseMessage) *twinUpdate {
	if len(d.values) == 0 {
		return nil
	}
	u := &twinUpdate{baseMessage: base, Twin: make(map[string]reportTwin, len(d.values))}
	for p, v := range d.values {
		rt := reportTwin{Actual: reportValue{Value: v, Metadata: valueMetadata{Timestamp: base.Timestamp}}}
		if t := d.types[p]; t != "" {
			rt.Metadata = &reportedType{Type: t}
		}
		u.Twin[p] = rt
	}
	return u
}

func parseLimit(s *string) *float64 {
	if s == nil {
		return nil
	}
	f, err := strconv.ParseFloat(*s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
