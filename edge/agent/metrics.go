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

package agent

import (
	"bufio"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	vmmetrics "github.com/VictoriaMetrics/metrics"
)

// metricSet is edgecore's /metrics in Prometheus' text format: its own series, computed at
// scrape time, then the Go runtime's and the process's (go_*, process_*), which
// VictoriaMetrics/metrics writes. Not client_golang: that links protobuf and its registry for
// a format edgecore never serves, about 1.4 MB of binary and 1.2 MiB resident on a device
// gateway (docs/benchmarks.md).
// Families are added while endpoints builds the handler, before it serves, so scrapes only
// read them.
type metricSet struct {
	families []family
}

// family is one metric: a single series, or one series per label value.
type family struct {
	name, help, kind string
	value            func() float64
	label            string
	values           func() map[string]float64
}

func (s *metricSet) add(f family) {
	if slices.ContainsFunc(s.families, func(g family) bool { return g.name == f.name }) {
		panic("metric " + f.name + " registered twice")
	}
	s.families = append(s.families, f)
}

// gauge adds a value that goes up and down.
func (s *metricSet) gauge(name, help string, f func() float64) {
	s.add(family{name: name, help: help, kind: "gauge", value: f})
}

// counter adds a count that only grows.
func (s *metricSet) counter(name, help string, f func() float64) {
	s.add(family{name: name, help: help, kind: "counter", value: f})
}

// counterVec adds counts by the value of one label.
func (s *metricSet) counterVec(name, help, label string, f func() map[string]float64) {
	s.add(family{name: name, help: help, kind: "counter", label: label, values: f})
}

// write writes every family, series by label value in order, then the runtime's and process's.
// A bufio.Writer keeps its first error for Flush, where ServeHTTP meets it.
func (s *metricSet) write(w *bufio.Writer) {
	for _, f := range s.families {
		_, _ = fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		if f.values == nil {
			_, _ = fmt.Fprintf(w, "%s %s\n", f.name, formatValue(f.value()))
			continue
		}
		values := f.values()
		for _, lv := range slices.Sorted(maps.Keys(values)) {
			_, _ = fmt.Fprintf(w, "%s{%s=\"%s\"} %s\n", f.name, f.label, escapeLabel(lv), formatValue(values[lv]))
		}
	}
	vmmetrics.WriteProcessMetrics(w)
}

func (s *metricSet) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	s.write(bw)
	_ = bw.Flush()
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// escapeHelp and escapeLabel escape what the text format requires: a backslash and a line
// break in help text, and a double quote too in a label value.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
