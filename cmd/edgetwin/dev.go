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
	o.TestImages = testImages(stderr)
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
				"Runs edgetwin on this machine: kube-apiserver, etcd, kube-scheduler and kube-controller-manager\n"+
				"(or --kubeconfig's cluster), cloudcore, edge nodes joined with tokens, and simulated devices,\n"+
				"until Ctrl-C. When containerd can run here (root, Debian's containerd, runc and\n"+
				"containernetworking-plugins), "+devenv.PodsNode+" also runs pods: Edged on a containerd of its own\n"+
				"with the test images (hack/build-test-images.sh) imported, and the sample Deployment\n"+
				"(config/samples/workloads/) runs there. Stopping removes its containers; the next start runs\n"+
				"them again.\n\nFlags:\n")
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

// testImages returns a builder that runs hack/build-test-images.sh from the edgetwin checkout
// this command runs in, into the cache 'make test-images' uses; outside a checkout it uses what
// is in that cache.
func testImages(stderr io.Writer) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		dir, err := testImagesDir()
		if err != nil {
			return "", err
		}
		script, err := findUp("hack/build-test-images.sh")
		if err != nil {
			for _, img := range []string{"pause.tar", "workload.tar"} {
				if _, err := os.Stat(filepath.Join(dir, img)); err != nil {
					return "", fmt.Errorf("the test images are not in %s: run 'make test-images' in the edgetwin checkout", dir)
				}
			}
			return dir, nil
		}
		cmd := exec.CommandContext(ctx, script, dir)
		cmd.Dir = filepath.Dir(filepath.Dir(script))
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("building the test images (hack/build-test-images.sh): %w", err)
		}
		return dir, nil
	}
}

// testImagesDir is where 'make test-images' puts the test images: $EDGETWIN_CACHE/test-images,
// or edgetwin/test-images in the user's cache directory.
func testImagesDir() (string, error) {
	if dir := os.Getenv("EDGETWIN_CACHE"); dir != "" {
		return filepath.Join(dir, "test-images"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory for the test images: %w", err)
	}
	return filepath.Join(cache, "edgetwin", "test-images"), nil
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
