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

package statuswrite

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
)

func TestTheGovernorYieldsToASlowAPIServerAndRecovers(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGovernor(GovernorOptions{Max: 100, Burst: 100, Target: 100 * time.Millisecond, Registerer: reg, Name: "test"})
	fast, slow := 20*time.Millisecond, 2*time.Second
	window := func(fastWrites, slowWrites int) rate.Limit {
		for range fastWrites {
			g.Observe(fast)
		}
		for range slowWrites {
			g.Observe(slow)
		}
		g.Adjust()
		return g.Limit()
	}
	steps := []struct {
		name       string
		fast, slow int
		want       rate.Limit
	}{
		{"fast writes at the full rate stay there", 50, 0, 100},
		{"most writes slow: halve", 10, 40, 50},
		{"still slow: halve again", 0, 5, 25},
		{"one slow write in a hundred is not overload: hold", 99, 1, 25},
		{"two slow in ten is: halve", 8, 2, 12.5},
		{"down to the floor, a twentieth of the budget", 0, 3, 6.25},
		{"never below it", 0, 3, 5},
		{"never below it, however slow", 0, 9, 5},
		{"fast again: a tenth of the budget back per window", 5, 0, 15},
		{"no writes at all is no overload either", 0, 0, 25},
	}
	for _, s := range steps {
		if got := window(s.fast, s.slow); got != s.want {
			t.Fatalf("%s: the rate is %v, want %v", s.name, got, s.want)
		}
	}
	if got := testutil.ToFloat64(g.budget); got != 25 {
		t.Fatalf("edgetwin_test_budget_per_second = %v, want 25", got)
	}
	for range 20 {
		window(10, 0)
	}
	if got := g.Limit(); got != 100 {
		t.Fatalf("after twenty fast windows the rate is %v, want the full 100", got)
	}
}

func TestTheGovernorsRateIsWhatWaitAllows(t *testing.T) {
	g := NewGovernor(GovernorOptions{Max: 1000, Burst: 1, Min: 2, Target: time.Millisecond})
	for range 10 {
		g.Observe(time.Second)
		g.Adjust()
	}
	if got := g.Limit(); got != 2 {
		t.Fatalf("rate %v after ten slow windows, want the floor of 2", got)
	}
	// At 2/s with a burst of 1, the first write goes at once and the second waits about 500 ms;
	// a context of 100 ms cannot wait that long.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		t.Fatalf("the first write waited: %v", err)
	}
	if err := g.Wait(ctx); err == nil {
		t.Fatal("a second write within 100 ms passed a budget of 2/s")
	}
}
