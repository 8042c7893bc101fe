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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/edgetwin/edgetwin/pkg/devenv"
)

// dev runs 'edgetwin dev': the whole system on this machine until Ctrl-C.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseDev(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "edgetwin dev: %v\nRun 'edgetwin dev -h' for help.\n", err)
		return exitUsage
	}
	o.Out = stdout
	o.BuildControlPlane = buildControlPlane(stdout, stderr)
	if err := devenv.Run(ctx, o); err != nil {
		_, _ = fmt.Fprintf(stderr, "edgetwin dev: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func parseDev(args []string, helpOut io.Writer) (devenv.Options, error) {
	o := devenv.Options{}
	fs := flag.NewFlagSet("edgetwin dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Dir, "dir", ".dev", "Directory for all state (etcd data, certificates, edge data, logs); the next start resumes from it.")
	fs.BoolVar(&o.Fresh, "fresh", false, "Remove the state in --dir first and start over.")
	fs.IntVar(&o.Edges, "edges", 2, "Number of edge nodes (edge-1 ... edge-N), each with its own edgecore, broker and simulator.")
	fs.IntVar(&o.Devices, "devices", 4, "Simulated thermostats to add to the samples' two, spread over the edge nodes.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "Use this existing cluster (CRDs are installed there) instead of a local control plane.")
	fs.BoolVar(&o.Mosquitto, "mosquitto", false, "Give each edge node its own mosquitto (Debian's) instead of edgecore's internal broker.")
	fs.IntVar(&o.HubPort, "hub-port", 10350, "CloudHub's port on 127.0.0.1.")
	fs.StringVar(&o.BinDir, "bin-dir", "", "Where cloudcore, edgecore and edgetwin-sim are (default: next to this edgetwin).")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprint(helpOut, "Usage: edgetwin dev [flags]\n\n"+
				"Runs edgetwin on this machine: kube-apiserver and etcd (or --kubeconfig's cluster), cloudcore,\n"+
				"edge nodes joined with tokens, and simulated devices, until Ctrl-C.\n\nFlags:\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
			return o, err
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.BinDir == "" {
		self, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("finding this program's directory: %w", err)
		}
		o.BinDir = filepath.Dir(self)
	}
	return o, nil
}

// buildControlPlane returns a builder that runs hack/build-control-plane.sh from the edgetwin
// checkout this command runs in, showing its progress.
func buildControlPlane(stdout, stderr io.Writer) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		script, err := findUp("hack/build-control-plane.sh")
		if err != nil {
			return fmt.Errorf("%w; run 'make control-plane' in the edgetwin checkout", err)
		}
		cmd := exec.CommandContext(ctx, script)
		cmd.Dir = filepath.Dir(filepath.Dir(script))
		cmd.Stdout, cmd.Stderr = stdout, stderr
		return cmd.Run()
	}
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found in %s or above", rel, dir)
		}
		dir = parent
	}
}
