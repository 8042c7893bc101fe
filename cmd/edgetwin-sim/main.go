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

// Command edgetwin-sim is a device simulator: a mapper that speaks edgecore's device-twin MQTT
// protocol (docs/mqtt.md) for every device of one edge node whose protocol is "simulator" (or
// the one given). It applies and reports back every desired value, so the cloud sees the
// devices synced, and makes thermostats, switches and counters behave a little like the real
// ones in between. See pkg/sim.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgetwin/edgetwin/pkg/sim"
)

const (
	exitFailure = 1
	exitUsage   = 2

	// shutdownTimeout bounds the wait for HTTP requests in flight on the way out.
	shutdownTimeout = 5 * time.Second
)

// errUsage marks errors in what the user typed, which exit with code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "edgetwin-sim: %v\n", err)
		if errors.Is(err, errUsage) {
			_, _ = fmt.Fprintln(os.Stderr, "Run 'edgetwin-sim -h' for help.")
			os.Exit(exitUsage)
		}
		os.Exit(exitFailure)
	}
}

// options is what the command line asked for.
type options struct {
	cfg         sim.Config
	httpAddress string
}

// run simulates until ctx ends (SIGINT or SIGTERM) and returns nil then; it returns an error
// wrapping errUsage for a bad command line, and any other error for a failure to start.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	o.cfg.Log = stderr
	s, err := sim.New(o.cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if o.httpAddress != "" {
		// Listen before anything runs, so that a port in use is an error and not a log line.
		ln, err := net.Listen("tcp", o.httpAddress)
		if err != nil {
			return fmt.Errorf("serving http: %w", err)
		}
		srv := &http.Server{Handler: endpoints(s), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		_, _ = fmt.Fprintf(stderr, "edgetwin-sim: serving /devices, /events and /metrics on http://%s\n", ln.Addr())
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				_, _ = fmt.Fprintf(stderr, "edgetwin-sim: serving http: %v\n", err)
			}
		}()
	}
	return s.Run(ctx)
}

// parseFlags parses the command line into a simulator config. -h prints the help to helpOut
// and returns flag.ErrHelp.
func parseFlags(args []string, helpOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("edgetwin-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.cfg.Broker, "broker", sim.DefaultBroker, "MQTT broker URL (tcp://host:port); edgecore's embedded broker by default.")
	fs.StringVar(&o.cfg.Username, "username", "", "MQTT username, if the broker wants one.")
	fs.StringVar(&o.cfg.Password, "password", "", "MQTT password.")
	fs.StringVar(&o.cfg.Node, "node", "", "Name of the edge node whose devices to simulate (required).")
	fs.StringVar(&o.cfg.ClientID, "client-id", "", "MQTT client id; stable across restarts (default edgetwin-sim-<node>).")
	fs.StringVar(&o.cfg.Protocol, "protocol", sim.DefaultProtocol, "Drive the devices of this protocol; '*' drives every device of the node.")
	fs.DurationVar(&o.cfg.ReportInterval, "report-interval", sim.DefaultReportInterval, "How often every device advances and reports.")
	fs.StringVar(&o.httpAddress, "http-address", "", "Serve GET /devices, /events, /metrics and /healthz on this host:port (default off).")
	fs.Var((*verbosity)(&o.cfg.Verbosity), "v", "More log lines: -v for ignored messages, -v=2 (or -v -v) for every message published.")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprint(helpOut, "Usage: edgetwin-sim --node NODE [flags]\n\n"+
				"Simulates the devices of an edge node over edgecore's device-twin MQTT protocol.\n\nFlags:\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.cfg.Node == "":
		return o, errors.New("--node is required")
	case o.cfg.ReportInterval <= 0:
		return o, fmt.Errorf("--report-interval %s must be positive", o.cfg.ReportInterval)
	}
	return o, nil
}

// verbosity is -v: alone it adds one level, each time it is given; -v=N sets the level.
type verbosity int

func (v *verbosity) String() string {
	if v == nil {
		return "0"
	}
	return strconv.Itoa(int(*v))
}

func (v *verbosity) Set(s string) error {
	if s == "true" {
		*v++
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("verbosity %q is not a level (0, 1, 2)", s)
	}
	*v = verbosity(n)
	return nil
}

// IsBoolFlag lets -v stand alone.
func (*verbosity) IsBoolFlag() bool { return true }

// endpoints serves the simulator's view: the devices, the last events, the metrics, and
// /healthz (200 while connected and subscribed).
func endpoints(s *sim.Simulator) http.Handler {
	reg := prometheus.NewRegistry()
	stat := func(f func(sim.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.Stats())) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgetwin_sim_devices", Help: "Devices the simulator drives."},
			func() float64 { return float64(s.Stats().Devices) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgetwin_sim_connected", Help: "1 while connected and subscribed."},
			func() float64 {
				if s.Stats().Connected {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgetwin_sim_deltas_total", Help: "Deltas received for driven devices."},
			stat(func(st sim.Stats) uint64 { return st.Deltas })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgetwin_sim_reports_total", Help: "twin/update messages the broker took."},
			stat(func(st sim.Stats) uint64 { return st.Reports })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgetwin_sim_result_errors_total",
			Help: "Error results the edge sent for driven devices."}, stat(func(st sim.Stats) uint64 { return st.ResultErrors })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgetwin_sim_garbage_total", Help: "Unreadable messages dropped."},
			stat(func(st sim.Stats) uint64 { return st.Garbage })),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Snapshot()) })
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Events()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Stats().Connected {
			http.Error(w, "not connected to the broker", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
