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

// Command edgecore is edgetwin's edge agent.
//
//	edgecore join --server https://HOST:PORT --token TOKEN --name NODE --data-dir DIR
//	edgecore run --data-dir DIR
//	edgecore --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/edgetwin/edgetwin/edge/agent"
)

const usage = `usage:
  edgecore join --server https://HOST:PORT --token TOKEN --name NODE --data-dir DIR [--ca-file FILE] [--force]
                [--broker-mode internal|external] [--broker-address HOST:PORT]
                [--containerd [--containerd-dir DIR] [--pod-subnet CIDR] [--bridge NAME] [--image TARBALL ...]
                 | --runtime-endpoint unix:///PATH] [--max-pods N]
                [--install-systemd [--systemd-dir /etc/systemd/system]]
  edgecore run --data-dir DIR [--metrics-bind-address 127.0.0.1:10351] [--certificate-renew-before DURATION]
  edgecore --version
`

// errUsage marks errors that are the user's input; main exits 2 for them.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "edgecore:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "edgecore:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, usage)
		return fmt.Errorf("%w: a command is needed (join or run)", errUsage)
	}
	switch args[0] {
	case "join":
		return joinCmd(ctx, args[1:], stdout, stderr)
	case "run":
		return runCmd(ctx, args[1:], stderr, nil)
	case "-h", "--help", "help":
		_, _ = io.WriteString(stdout, usage)
		return nil
	case "--version", "-version", "version":
		build := ""
		if !agent.EdgedBuiltIn {
			build = " (device-only: built without Edged)"
		}
		_, _ = fmt.Fprintf(stdout, "edgecore %s %s/%s%s\n", agent.Version, runtime.GOOS, runtime.GOARCH, build)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (want join or run)", errUsage, args[0])
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func runCmd(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("edgecore run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "/var/lib/edgecore", "The directory 'edgecore join' wrote.")
	metrics := fs.String("metrics-bind-address", "127.0.0.1:10351", "Address of /healthz, /readyz and /metrics; \"0\" turns them off.")
	verbosity := fs.Int("v", 0, "Log verbosity.")
	profiling := fs.Bool("profiling", false, "Serve Go's /debug/pprof on the metrics address too (keep it on loopback).")
	renewBefore := fs.Duration("certificate-renew-before", 0,
		"Renew the node certificate once less than this is left of it; 0 renews once a third of its lifetime is left.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *renewBefore < 0 {
		return fmt.Errorf("%w: --certificate-renew-before must not be negative", errUsage)
	}
	return agent.Run(ctx, agent.Options{DataDir: *dataDir, MetricsAddress: *metrics, Logger: logger(stderr, *verbosity), Ready: ready,
		RenewBefore: *renewBefore, Profiling: *profiling})
}

func logger(w io.Writer, verbosity int) logr.Logger {
	return funcr.New(func(prefix, args string) {
		if prefix != "" {
			_, _ = fmt.Fprintf(w, "%s: %s\n", prefix, args)
			return
		}
		_, _ = fmt.Fprintln(w, args)
	}, funcr.Options{Verbosity: verbosity, LogTimestamp: true})
}
