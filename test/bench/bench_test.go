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
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEveryScenarioAtSmallSize runs the benchmark plan at a small size and checks correctness
// only: every node connects, no update is lost, every latency is recorded. Timings are printed,
// never asserted; 'make bench' measures them.
func TestEveryScenarioAtSmallSize(t *testing.T) {
	binDir := t.TempDir()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ out, pkg, tags string }{{"cloudcore", "cloudcore", ""}, {"edgecore", "edgecore", ""},
		{DeviceOnlyEdgecore, "edgecore", "noedged"}, {"edgetwin-sim", "edgetwin-sim", ""}} {
		build := exec.Command("go", "build", "-tags", b.tags, "-o", filepath.Join(binDir, b.out), "./cmd/"+b.pkg)
		build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", b.out, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	plan := Small()
	var out bytes.Buffer
	results, err := plan.Run(ctx, binDir, &out, nil)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := 6; len(results) != want {
		t.Fatalf("%d results, want %d (connect storm, idle, fan-out, reported, reconnect, edge)", len(results), want)
	}
	// One latency per patch, or a newer value of the same device arrived instead.
	expectSamples := map[string]float64{
		"desired-fan-out (hollow nodes)":        float64(plan.FanOutRate) * plan.FanOutFor.Seconds(),
		"edge-footprint and end-to-end fan-out": float64(plan.EdgeRate) * plan.EdgeFor.Seconds(),
	}
	for _, r := range results {
		if r.Lost != 0 {
			t.Errorf("%s lost %d updates: %v", r.Scenario, r.Lost, r.Notes)
		}
		if want, ok := expectSamples[r.Scenario]; ok && float64(len(r.Latencies)+r.Coalesced) != want {
			t.Errorf("%s recorded %d latencies and %d coalesced values, want one per patch (%v)", r.Scenario,
				len(r.Latencies), r.Coalesced, want)
		}
		if r.Scenario == "reported-path" && len(r.Latencies) == 0 {
			t.Errorf("the reported path recorded no latency")
		}
		if r.Scenario == "edge-footprint and end-to-end fan-out" {
			// Both builds of edgecore ran their devices and were measured.
			for _, what := range []string{"edgecore", "device-only edgecore (noedged)"} {
				if v, ok := r.Metric(what + " RSS anonymous (heap, stacks, SQLite)"); !ok || v <= 0 {
					t.Errorf("no resident memory recorded for the %s (%v)", what, v)
				}
			}
		}
		if r.Scenario == "connect-storm" {
			if v, ok := r.Metric("dials (connection attempts)"); !ok || v < float64(plan.StormNodes[0]) {
				t.Errorf("the connect storm dialed %v times for %d nodes", v, plan.StormNodes[0])
			}
		}
	}
}
