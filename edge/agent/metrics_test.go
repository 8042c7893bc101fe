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
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, s *metricSet) string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	s.write(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// The exposition is Prometheus' text format, as Prometheus' own parser reads it: every family
// with its help and type, label values escaped and in order, and the runtime's and process's
// series after ours.
func TestMetricsAreWhatPrometheusReads(t *testing.T) {
	s := &metricSet{}
	s.gauge("edgetwin_test_connected", `1 while up; a \ and a
line break`, func() float64 { return 1 })
	s.counter("edgetwin_test_bytes_total", "Bytes.", func() float64 { return 12345678901 })
	s.counterVec("edgetwin_test_refused_total", "Refused, by reason.", "reason", func() map[string]float64 {
		return map[string]float64{"ValueOutOfRange": 2, `odd "reason"` + "\n": 1, "BadRequest": 3}
	})
	text := scrape(t, s)
	for _, want := range []string{
		"# HELP edgetwin_test_connected 1 while up; a \\\\ and a\\nline break\n# TYPE edgetwin_test_connected gauge\nedgetwin_test_connected 1\n",
		"# TYPE edgetwin_test_bytes_total counter\nedgetwin_test_bytes_total 1.2345678901e+10\n",
		"edgetwin_test_refused_total{reason=\"BadRequest\"} 3\nedgetwin_test_refused_total{reason=\"ValueOutOfRange\"} 2\n" +
			"edgetwin_test_refused_total{reason=\"odd \\\"reason\\\"\\n\"} 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the exposition lacks %q:\n%s", want, text)
		}
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the exposition: %v\n%s", err, text)
	}
	if got := families["edgetwin_test_refused_total"].GetMetric(); len(got) != 3 || got[2].GetLabel()[0].GetValue() != "odd \"reason\"\n" {
		t.Errorf("the labelled family parses as %v", got)
	}
	if got := families["edgetwin_test_bytes_total"].GetMetric()[0].GetCounter().GetValue(); got != 12345678901 {
		t.Errorf("the counter parses as %v", got)
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines", "go_memstats_heap_inuse_bytes"} {
		m, ok := families[name]
		if !ok || len(m.GetMetric()) == 0 {
			t.Errorf("the exposition lacks %s", name)
			continue
		}
		if v := m.GetMetric()[0].GetUntyped().GetValue() + m.GetMetric()[0].GetGauge().GetValue() + m.GetMetric()[0].GetCounter().GetValue(); v <= 0 {
			t.Errorf("%s = %v, want a positive value", name, v)
		}
	}
}

func TestAMetricRegisteredTwiceIsABug(t *testing.T) {
	s := &metricSet{}
	s.gauge("edgetwin_test_x", "X.", func() float64 { return 0 })
	defer func() {
		if recover() == nil {
			t.Errorf("registering edgetwin_test_x twice did not panic")
		}
	}()
	s.counter("edgetwin_test_x", "X again.", func() float64 { return 0 })
}
