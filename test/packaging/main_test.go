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

// Package packaging tests the ways edgetwin is installed, against a real API server and etcd:
// the kustomize install (config/default) and the deploy overlay, the Helm chart (helm lint,
// helm template applied with kubectl), the operator bundle (validated as operator-sdk would:
// owned CRDs, alm-examples through a server-side dry run, RBAC, install strategy, annotations),
// the cloudcore image built without Docker (read back and its binary run), and the edge
// packaging (the static arm64 edgecore under qemu-user, the systemd unit 'edgecore join
// --install-systemd' writes).
package packaging

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/test/harness"
)

// cl is the package's control plane, with cloudcore, edgecore and edgetwin built.
var (
	cl   *harness.Cluster
	root = harness.RepoRoot()
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if err := readInputs(); err != nil {
		fmt.Fprintln(os.Stderr, "packaging suite:", err)
		return 1
	}
	var err error
	if cl, err = harness.Setup("cloudcore", "edgecore"); err != nil {
		fmt.Fprintln(os.Stderr, "packaging suite:", err)
		return 1
	}
	defer cl.Close()
	return m.Run()
}

// readInputs reads every file the packaging is made from. The tests build binaries and run
// scripts in other processes, which go test's result cache cannot see; reading the files here
// makes the cache notice any change to them, so a cached pass is never stale.
func readInputs() error {
	for _, dir := range []string{"api", "cloud", "cmd", "config", "controllers", "edge", "pkg", "hack", "charts", "bundle"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = os.ReadFile(path)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "bundle.Dockerfile", "Dockerfile"} {
		if _, err := os.ReadFile(filepath.Join(root, f)); err != nil {
			return err
		}
	}
	return nil
}

// run runs a program with stdin and returns its stdout; a failure ends the test with stderr.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, stderr, err := runErr(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func runErr(t *testing.T, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// kubectl runs the real kubectl against the suite's API server.
func kubectl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	return run(t, stdin, "kubectl", append([]string{"--kubeconfig", cl.Kubeconfig}, args...)...)
}

// canI asks the API server whether a service account may do something (kubectl auth can-i).
// The authorizer learns of new roles through a watch, so a fresh grant is waited for, briefly.
func canI(t *testing.T, sa string, want bool, args ...string) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, err := runErr(t, nil, "kubectl", append([]string{"--kubeconfig", cl.Kubeconfig, "auth", "can-i", "--as", sa}, args...)...)
		answer := strings.TrimSpace(string(out))
		if err != nil && answer != "no" {
			t.Fatalf("kubectl auth can-i %s: %v %s", strings.Join(args, " "), err, out)
		}
		if got := answer == "yes"; got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}
