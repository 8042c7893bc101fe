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
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/edgetwin/edgetwin/edge/agent"
	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/join"
)

const usage = `usage:
  edgecore join --server https://HOST:PORT --token TOKEN --name NODE --data-dir DIR [--ca-file FILE] [--force]
                [--broker-mode internal|external] [--broker-address HOST:PORT]
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
		_, _ = fmt.Fprintf(stdout, "edgecore %s %s/%s\n", agent.Version, runtime.GOOS, runtime.GOARCH)
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

func joinCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgecore join", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "CloudHub's address, https://HOST:PORT.")
	token := fs.String("token", "", "The join token from 'edgetwin token create NODE'.")
	name := fs.String("name", "", "This node's name; the token must be bound to it.")
	dataDir := fs.String("data-dir", "/var/lib/edgecore", "Where the config, credentials and local store go.")
	caFile := fs.String("ca-file", "", "Trust CloudHub through this CA file (it must still match the token's pin).")
	force := fs.Bool("force", false, "Join again even if the data directory holds a config (keeps the local store).")
	brokerMode := fs.String("broker-mode", config.BrokerInternal,
		"MQTT broker for mappers: \"internal\" (runs inside edgecore) or \"external\" (for example mosquitto).")
	brokerAddr := fs.String("broker-address", config.DefaultBrokerAddress,
		"Where the internal broker listens, or the external broker to dial (host:port).")
	installSystemd := fs.Bool("install-systemd", false,
		"Also write a systemd unit that runs 'edgecore run' for this node at boot (this binary, this data directory).")
	systemdDir := fs.String("systemd-dir", join.DefaultSystemdDir, "Where --install-systemd writes "+join.SystemdUnitName+".")
	if err := parse(fs, args); err != nil {
		return err
	}
	for flagName, v := range map[string]string{"--server": *server, "--token": *token, "--name": *name} {
		if v == "" {
			return fmt.Errorf("%w: %s is required", errUsage, flagName)
		}
	}
	if _, err := os.Stat(filepath.Join(*dataDir, config.FileName)); err == nil && !*force {
		return fmt.Errorf("%w: %s already holds a joined node; use --force to join again", errUsage, *dataDir)
	}
	cfg := config.New(*server, *name)
	cfg.Broker.Mode, cfg.Broker.Address = *brokerMode, *brokerAddr
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	var opts []join.Option
	if *caFile != "" {
		opts = append(opts, join.WithCAFile(*caFile))
	}
	res, err := join.Join(ctx, *server, *token, *name, opts...)
	if err != nil {
		return err
	}
	// The key first and the config last: a config only exists once everything it names does.
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{config.Path(*dataDir, cfg.KeyFile), res.KeyPEM, 0o600},
		{config.Path(*dataDir, cfg.CertFile), res.CertificatePEM, 0o644},
		{config.Path(*dataDir, cfg.CAFile), res.CAPEM, 0o644},
	}
	for _, f := range files {
		if err := config.WriteFileAtomic(f.path, f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	if err := cfg.Save(*dataDir); err != nil {
		return err
	}
	validUntil := res.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	if !*installSystemd {
		_, _ = fmt.Fprintf(stdout, "node %s joined (certificate valid until %s); start it with:\n  edgecore run --data-dir %s\n",
			res.NodeName, validUntil, *dataDir)
		return nil
	}
	unit, err := installUnit(*systemdDir, *dataDir)
	if err != nil {
		return fmt.Errorf("node %s joined, but writing its systemd unit failed (run 'edgecore run --data-dir %s' by hand): %w",
			res.NodeName, *dataDir, err)
	}
	_, _ = fmt.Fprintf(stdout, "node %s joined (certificate valid until %s); wrote %s, start it with:\n"+
		"  systemctl daemon-reload && systemctl enable --now edgecore\n", res.NodeName, validUntil, unit)
	return nil
}

// installUnit writes the systemd unit for this very binary and dataDir, both made absolute.
func installUnit(systemdDir, dataDir string) (string, error) {
	binary, err := os.Executable()
	if err != nil {
		return "", err
	}
	if binary, err = filepath.EvalSymlinks(binary); err != nil {
		return "", err
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return "", err
	}
	return join.WriteSystemdUnit(systemdDir, binary, dataDir)
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
