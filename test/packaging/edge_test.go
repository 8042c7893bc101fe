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

package packaging

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/test/harness"
)

// TestEdgecoreArm64 builds edgecore for arm64 as 'make build-edge' does (cgo cross-compiler,
// static), checks it is a static aarch64 binary, and runs its --version under qemu-user. Only
// the run skips, and only where qemu-user is missing ('make test' installs qemu-user-static).
func TestEdgecoreArm64(t *testing.T) {
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil {
		t.Fatal("aarch64-linux-gnu-gcc is missing: run the tests with 'make test', which installs gcc-aarch64-linux-gnu")
	}
	out := t.TempDir()
	run(t, nil, "hack/build-edge.sh", out, testVersion, "arm64")
	bin := filepath.Join(out, "linux_arm64", "edgecore")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machine
	_ = f.Close()
	if machine != elf.EM_AARCH64 {
		t.Errorf("the arm64 edgecore is built for %v", machine)
	}
	if interp := interpreter(t, bin); interp != "" {
		t.Errorf("the arm64 edgecore is dynamically linked (%s), want static", interp)
	}

	var qemu string
	for _, name := range []string{"qemu-aarch64-static", "qemu-aarch64"} {
		if p, err := exec.LookPath(name); err == nil {
			qemu = p
			break
		}
	}
	if qemu == "" {
		t.Skip("qemu-user is not installed (Debian: qemu-user-static), so the arm64 edgecore was built and checked but not run")
	}
	got := strings.TrimSpace(string(run(t, nil, qemu, bin, "--version")))
	if want := "edgecore " + testVersion + " linux/arm64"; got != want {
		t.Errorf("edgecore --version under qemu = %q, want %q", got, want)
	}
}

// TestEdgecoreAmd64IsStatic: the amd64 edgecores of 'make build-edge', the full one and the
// device-only one, are static and run; the device-only one says so and refuses to run pods.
func TestEdgecoreAmd64IsStatic(t *testing.T) {
	out := t.TempDir()
	run(t, nil, "hack/build-edge.sh", out, testVersion, "amd64")
	for _, b := range []struct{ name, version string }{
		{"edgecore", "edgecore " + testVersion + " linux/amd64"},
		{"edgecore-noedged", "edgecore " + testVersion + " linux/amd64 (device-only: built without Edged)"},
	} {
		bin := filepath.Join(out, "linux_amd64", b.name)
		if interp := interpreter(t, bin); interp != "" {
			t.Errorf("the amd64 %s is dynamically linked (%s), want static", b.name, interp)
		}
		if got := strings.TrimSpace(string(run(t, nil, bin, "--version"))); got != b.version {
			t.Errorf("%s --version = %q, want %q", b.name, got, b.version)
		}
	}
	cmd := exec.Command(filepath.Join(out, "linux_amd64", "edgecore-noedged"), "join", "--server", "https://127.0.0.1:1",
		"--name", "edge-1", "--token", "abc234.abcdefghijklmnopqrstuvwxyz."+strings.Repeat("0", 64), "--containerd",
		"--data-dir", filepath.Join(out, "data"))
	got, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(got), "built without Edged") {
		t.Errorf("edgecore-noedged join --containerd = %v:\n%s\nwant exit 2, refusing to run pods", err, got)
	}
}

// TestJoinInstallsSystemdUnit joins a node through a real cloudcore with --install-systemd and
// checks the unit it writes: this edgecore binary, 'run', the absolute data directory.
func TestJoinInstallsSystemdUnit(t *testing.T) {
	cc := cl.StartCloudcore(t, harness.FreePort(t))
	ctx := context.Background()
	ca, err := pki.EnsureCA(ctx, cl.Client, harness.SystemNamespace, pki.DefaultCASecretName)
	if err != nil {
		t.Fatal(err)
	}
	node := "edge-systemd"
	token, err := join.Create(ctx, cl.Client, harness.SystemNamespace, node, time.Hour, ca)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	systemdDir := filepath.Join(work, "etc", "systemd", "system")
	cmd := exec.Command(filepath.Join(cl.BinDir, "edgecore"), "join", "--server", cc.ServerURL(), "--token", token, "--name", node,
		"--data-dir", "data", "--install-systemd", "--systemd-dir", systemdDir)
	cmd.Dir = work // a relative data directory: the unit must hold it absolute
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("edgecore join --install-systemd: %v\n%s", err, out)
	}
	unitPath := filepath.Join(systemdDir, "edgecore.service")
	if !strings.Contains(string(out), "wrote "+unitPath) || !strings.Contains(string(out), "systemctl enable --now edgecore") {
		t.Errorf("join's output does not say where the unit is and how to start it:\n%s", out)
	}
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	binary, err := filepath.EvalSymlinks(filepath.Join(cl.BinDir, "edgecore"))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(work, "data")
	for _, want := range []string{
		fmt.Sprintf("ExecStart=%s run --data-dir %s\n", binary, dataDir),
		"ReadWritePaths=" + dataDir + "\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "edgecore.yaml")); err != nil {
		t.Errorf("join did not write its config: %v", err)
	}
	if path, err := exec.LookPath("systemd-analyze"); err == nil {
		// systemd's own parser, where it is installed; the binary must exist, which it does.
		if out, err := exec.Command(path, "verify", unitPath).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}
