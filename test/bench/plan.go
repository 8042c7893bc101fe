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
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Plan says which scenarios run at which sizes.
type Plan struct {
	// StormNodes are the fleet sizes of the connect storm and idle scenarios, each with a fresh
	// cloudcore.
	StormNodes []int
	// IdleFor is how long the idle scenario watches a connected fleet.
	IdleFor time.Duration
	// LoadNodes is the fleet size (one of StormNodes) on which the device scenarios run.
	LoadNodes int
	// ReportDevices are the device counts of the reported path (each reporting every
	// ReportInterval); the largest is also the number of devices created.
	ReportDevices  []int
	ReportInterval time.Duration
	ReportFor      time.Duration
	// FanOutRate patches per second for FanOutFor, over all devices.
	FanOutRate int
	FanOutFor  time.Duration
	// EdgeDevices on one real edgecore; EdgeRate patches per second for EdgeFor through it.
	EdgeDevices int
	EdgeRate    int
	EdgeFor     time.Duration
	// EdgeReportInterval is how often the simulator reports each device; zero is its default
	// (every second).
	EdgeReportInterval time.Duration
	// Reconnect runs the reconnect storm on the load fleet.
	Reconnect bool
	// CloudcoreFlags are added to cloudcore's command line (for example a status-write budget).
	CloudcoreFlags []string
	// Skip names scenarios not to run: fan-out, reported, reconnect, edge (the connect storm and
	// idle always run: the others need their fleet).
	Skip map[string]bool
}

// Small is every scenario at a size that checks correctness in a few minutes ('make test').
func Small() Plan {
	return Plan{StormNodes: []int{20}, IdleFor: 3 * time.Second, LoadNodes: 20,
		ReportDevices: []int{40}, ReportInterval: time.Second, ReportFor: 3 * time.Second,
		FanOutRate: 20, FanOutFor: 2 * time.Second, EdgeDevices: 10, EdgeRate: 10, EdgeFor: 2 * time.Second, Reconnect: true}
}

// Full is the published run ('make bench'): the targets of DESIGN.md.
func Full() Plan {
	return Plan{StormNodes: []int{1000, 5000, 10000}, IdleFor: 60 * time.Second, LoadNodes: 1000,
		ReportDevices: []int{200, 2000}, ReportInterval: time.Second, ReportFor: 30 * time.Second,
		FanOutRate: 100, FanOutFor: 30 * time.Second, EdgeDevices: 100, EdgeRate: 100, EdgeFor: 10 * time.Second, Reconnect: true}
}

// Run runs the plan with the binaries in binDir, printing each result to out and handing it
// to save. It stops at the first scenario that cannot run; a scenario that ran but lost
// updates is reported, not an error.
func (p Plan) Run(ctx context.Context, binDir string, out io.Writer, save func(name string, r *Result) error) ([]*Result, error) {
	var results []*Result
	keep := func(name string, r *Result) error {
		r.Print(out)
		results = append(results, r)
		if save != nil {
			return save(name, r)
		}
		return nil
	}
	for _, n := range p.StormNodes {
		if err := p.fleetScenarios(ctx, binDir, n, out, keep); err != nil {
			return results, err
		}
	}
	if p.EdgeDevices > 0 && !p.Skip["edge"] {
		e, err := NewEnv(ctx, binDir, out, p.CloudcoreFlags...)
		if err != nil {
			return results, err
		}
		r, err := EdgeFootprint(ctx, e, p.EdgeDevices, p.EdgeRate, p.EdgeFor, p.EdgeReportInterval)
		e.Close()
		if err != nil {
			return results, fmt.Errorf("edge footprint: %w", err)
		}
		if err := keep("edge-footprint", r); err != nil {
			return results, err
		}
	}
	return results, nil
}

func (p Plan) fleetScenarios(ctx context.Context, binDir string, n int, out io.Writer, keep func(string, *Result) error) error {
	_, _ = fmt.Fprintf(out, "\n-- %d hollow nodes: starting a control plane and cloudcore\n", n)
	e, err := NewEnv(ctx, binDir, out, p.CloudcoreFlags...)
	if err != nil {
		return err
	}
	defer e.Close()
	r, f, err := ConnectStorm(ctx, e, n)
	if err != nil {
		return fmt.Errorf("connect storm: %w", err)
	}
	defer f.Close()
	if err := keep(fmt.Sprintf("connect-storm-%d", n), r); err != nil {
		return err
	}
	if r, err = Idle(ctx, e, f, p.IdleFor); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := keep(fmt.Sprintf("idle-%d", n), r); err != nil {
		return err
	}
	if n != p.LoadNodes || len(p.ReportDevices) == 0 {
		return nil
	}
	devices, err := Devices(ctx, e, f, slices.Max(p.ReportDevices))
	if err != nil {
		return err
	}
	if !p.Skip["fan-out"] {
		if r, err = FanOut(ctx, e, f, devices, p.FanOutRate, p.FanOutFor); err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
		if err := keep(fmt.Sprintf("fan-out-%d", p.FanOutRate), r); err != nil {
			return err
		}
	}
	for _, d := range p.ReportDevices {
		if p.Skip["reported"] {
			break
		}
		if r, err = Reported(ctx, e, f, devices[:d], p.ReportInterval, p.ReportFor); err != nil {
			return fmt.Errorf("reported path: %w", err)
		}
		if err := keep(fmt.Sprintf("reported-%d", d), r); err != nil {
			return err
		}
	}
	if p.Reconnect && !p.Skip["reconnect"] {
		if r, err = ReconnectStorm(ctx, e, f, devices[:p.ReportDevices[0]]); err != nil {
			return fmt.Errorf("reconnect storm: %w", err)
		}
		if err := keep(fmt.Sprintf("reconnect-%d", n), r); err != nil {
			return err
		}
	}
	return nil
}
