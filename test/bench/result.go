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

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Parameter names in results, and the property the scenarios drive.
const (
	paramNodes   = "nodes"
	paramDevices = "devices"
	paramSeconds = "seconds"
	setpoint     = "setpoint"
)

// Result is what one scenario measured.
type Result struct {
	Scenario string         `json:"scenario"`
	Params   map[string]any `json:"params"`
	Metrics  []Metric       `json:"metrics"`
	// Lost counts updates that never arrived (a correctness failure, whatever the timings).
	Lost int `json:"lost"`
	// Coalesced counts updates replaced by a newer one of the same property before they were
	// delivered: by design (the newest value always arrives, intermediate ones may not).
	Coalesced int `json:"coalesced"`
	// Latencies are the raw samples of the scenario's latency, if it has one.
	Latencies []time.Duration `json:"-"`
	Notes     []string        `json:"notes,omitempty"`
	Started   time.Time       `json:"started"`
}

// Metric is one figure.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func newResult(scenario string, params map[string]any) *Result {
	return &Result{Scenario: scenario, Params: params, Started: time.Now().UTC()}
}

func (r *Result) add(name string, v float64, unit string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

// Metric returns a figure by name.
func (r *Result) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// addLatencies records the latency samples and their percentiles.
func (r *Result) addLatencies(prefix string, samples []time.Duration) {
	r.Latencies = append(r.Latencies, samples...)
	r.addPercentiles(prefix, samples)
}

// addPercentiles adds the figures of a breakdown (a part of the path whose latencies are not
// the scenario's own).
func (r *Result) addPercentiles(prefix string, samples []time.Duration) {
	r.add(prefix+" samples", float64(len(samples)), "")
	if len(samples) == 0 {
		return
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i].Microseconds()) / 1000
	}
	r.add(prefix+" p50", pct(0.50), "ms")
	r.add(prefix+" p95", pct(0.95), "ms")
	r.add(prefix+" p99", pct(0.99), "ms")
	r.add(prefix+" max", float64(s[len(s)-1].Microseconds())/1000, "ms")
}

// Print writes the result as a table.
func (r *Result) Print(w io.Writer) {
	_, _ = fmt.Fprintf(w, "\n== %s %v\n", r.Scenario, r.Params)
	for _, m := range r.Metrics {
		_, _ = fmt.Fprintf(w, "  %-44s %14.3f %s\n", m.Name, m.Value, m.Unit)
	}
	if r.Coalesced > 0 {
		_, _ = fmt.Fprintf(w, "  %-44s %14d\n", "coalesced (a newer value arrived instead)", r.Coalesced)
	}
	_, _ = fmt.Fprintf(w, "  %-44s %14d\n", "lost updates", r.Lost)
	for _, n := range r.Notes {
		_, _ = fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// Save writes the result as JSON into dir, named after the scenario and its size.
func (r *Result) Save(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(raw, '\n'), 0o644)
}
