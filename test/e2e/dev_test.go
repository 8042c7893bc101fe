//go:build e2e

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

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/test/harness"
)

// devicesOnline reports whether 'kubectl get devices' lists exactly want devices, all Online and Synced.
func devicesOnline(t *testing.T, kubeconfig string, want int) bool {
	out, err := harness.KubectlWith(t, kubeconfig, "get", "devices", "-n", "default", "--no-headers")
	if err != nil {
		return false
	}
	lines := strings.Split(out, "\n")
	if len(lines) != want {
		return false
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != "Online" || f[4] != "True" {
			return false
		}
	}
	return true
}

// leftovers lists the processes whose command line mentions any of marks.
func leftovers(marks ...string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(raw), "\x00", " ")
		for _, m := range marks {
			if strings.Contains(cmdline, m) {
				found = append(found, fmt.Sprintf("%d: %s", pid, cmdline))
				break
			}
		}
	}
	return found
}

// startDev runs 'edgetwin dev' and waits until it says it is running.
func startDev(t *testing.T, dir string, hubPort int) *harness.Proc {
	t.Helper()
	dev := cl.Start(t, "edgetwin", "dev", "--dir", dir, "--edges", "2", "--devices", "2", "--hub-port", strconv.Itoa(hubPort))
	harness.WaitFor(t, "edgetwin dev to say it is running", func() bool {
		return strings.Contains(dev.Output(), "edgetwin dev is running")
	})
	return dev
}

// TestMakeDev runs 'edgetwin dev' as a user does: the printed kubeconfig shows the devices
// Online, a setpoint patch comes back Synced, SIGTERM leaves no process behind, and a second
// start resumes with the same data.
func TestMakeDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	hubPort := harness.FreePort(t)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	marks := []string{dir, cl.BinDir + "/edgetwin-sim", cl.BinDir + "/edgecore", cl.BinDir + "/cloudcore"}
	if left := leftovers(marks...); len(left) > 0 {
		t.Fatalf("processes of an earlier test are still running:\n%s", strings.Join(left, "\n"))
	}

	dev := startDev(t, dir, hubPort)
	if !strings.Contains(dev.Output(), "export KUBECONFIG="+kubeconfig) {
		t.Fatalf("edgetwin dev did not print the export line for %s:\n%s", kubeconfig, dev.Output())
	}
	// The samples' two thermostats and two more, over two edge nodes.
	harness.WaitFor(t, "four devices Online and Synced", func() bool { return devicesOnline(t, kubeconfig, 4) })
	out, err := harness.KubectlWith(t, kubeconfig, "get", "edgenodes", "--no-headers")
	if err != nil || strings.Count(out, " True ") < 2 {
		t.Fatalf("kubectl get edgenodes: %v\n%s\nwant edge-1 and edge-2 connected", err, out)
	}

	if out, err := harness.KubectlWith(t, kubeconfig, "patch", "device", "lobby-thermostat", "-n", "default", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/properties/0/desired","value":"26"}]`); err != nil {
		t.Fatalf("kubectl patch: %v\n%s", err, out)
	}
	harness.WaitFor(t, "the setpoint 26 reported back and Synced", func() bool {
		got, _ := harness.KubectlWith(t, kubeconfig, "get", "device", "lobby-thermostat", "-n", "default", "-o",
			`jsonpath={.status.twins[?(@.name=="setpoint")].reported.value} {.status.conditions[?(@.type=="Synced")].status}`)
		return got == "26 True"
	})

	dev.Stop(t)
	if err := dev.ExitErr(); err != nil {
		t.Fatalf("edgetwin dev exited with %v after SIGTERM:\n%s", err, dev.Output())
	}
	if left := leftovers(marks...); len(left) > 0 {
		t.Fatalf("processes left after edgetwin dev stopped:\n%s", strings.Join(left, "\n"))
	}

	// The next start resumes: same objects, the user's change kept, no new join.
	dev = startDev(t, dir, hubPort)
	if !strings.Contains(dev.Output(), "edge-1 joined on an earlier run") {
		t.Fatalf("the second start did not resume edge-1:\n%s", dev.Output())
	}
	harness.WaitFor(t, "the four devices Online again", func() bool { return devicesOnline(t, kubeconfig, 4) })
	if got, _ := harness.KubectlWith(t, kubeconfig, "get", "device", "lobby-thermostat", "-n", "default", "-o",
		"jsonpath={.spec.properties[0].desired}"); got != "26" {
		t.Fatalf("after resuming, lobby-thermostat's desired setpoint is %q, want the 26 set before", got)
	}
	dev.Stop(t)
	if left := leftovers(marks...); len(left) > 0 {
		t.Fatalf("processes left after the second stop:\n%s", strings.Join(left, "\n"))
	}
}
