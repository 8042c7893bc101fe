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

// Command edgetwin-bench runs edgetwin's scale and latency scenarios ('make bench'): hollow
// edge nodes against a real cloudcore and API server, and a real edgecore with the simulator.
// It prints a table per scenario and writes each result as JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/edgetwin/edgetwin/test/bench"
)

func main() {
	ctrl.SetLogger(logr.Discard()) // envtest logs through controller-runtime; the tables are the output
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgetwin-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgetwin-bench", flag.ContinueOnError)
	size := fs.String("size", "full", "small (a correctness run, a few minutes) or full (the published figures)")
	binDir := fs.String("bin-dir", "bin", "Where cloudcore, edgecore and edgetwin-sim are ('make build').")
	outDir := fs.String("out", "bench-results", "Directory for the JSON results.")
	nodes := fs.String("nodes", "", "Override the connect-storm fleet sizes, comma-separated (for example 1000,5000).")
	idle := fs.Duration("idle", 0, "Override how long the idle scenario runs.")
	edgeRate := fs.Int("edge-rate", 0, "Override the patches per second of the end-to-end fan-out through the real edgecore.")
	edgeReports := fs.Duration("edge-report-interval", 0, "How often the simulator reports each device on the real edgecore (default 1s).")
	skip := fs.String("skip", "", "Scenarios not to run, comma-separated: fan-out, reported, reconnect, edge.")
	var cloudFlags stringList
	fs.Var(&cloudFlags, "cloudcore-flag", "A flag for cloudcore, repeatable (for example --cloudcore-flag=--status-write-qps=200).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var plan bench.Plan
	switch *size {
	case "small":
		plan = bench.Small()
	case "full":
		plan = bench.Full()
	default:
		return fmt.Errorf("--size %q: small or full", *size)
	}
	if *nodes != "" {
		plan.StormNodes = nil
		for f := range strings.SplitSeq(*nodes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("--nodes: %q is not a fleet size", f)
			}
			plan.StormNodes = append(plan.StormNodes, n)
		}
		if !slices.Contains(plan.StormNodes, plan.LoadNodes) {
			plan.LoadNodes = plan.StormNodes[0]
		}
	}
	if *idle > 0 {
		plan.IdleFor = *idle
	}
	if *edgeRate > 0 {
		plan.EdgeRate = *edgeRate
	}
	if *edgeReports > 0 {
		plan.EdgeReportInterval = *edgeReports
	}
	plan.CloudcoreFlags = append(plan.CloudcoreFlags, cloudFlags...)
	plan.Skip = map[string]bool{}
	for f := range strings.SplitSeq(*skip, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "fan-out", "reported", "reconnect", "edge":
			plan.Skip[f] = true
		default:
			return fmt.Errorf("--skip: unknown scenario %q", f)
		}
	}
	abs, err := filepath.Abs(*binDir)
	if err != nil {
		return err
	}
	start := time.Now()
	results, err := plan.Run(ctx, abs, out, func(name string, r *bench.Result) error { return r.Save(*outDir, name) })
	_, _ = fmt.Fprintf(out, "\n%d scenarios in %s; JSON in %s\n", len(results), time.Since(start).Round(time.Second), *outDir)
	return err
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
