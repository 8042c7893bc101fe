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
	"slices"
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

// withEnv lists the processes whose environment holds kv (NAME=value).
func withEnv(kv string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(raw), "\x00"), kv) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// mountsUnder lists the mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			found = append(found, f[4])
		}
	}
	return found
}

// podsExpected says whether edgetwin dev can run pods on this machine: as root, with Debian's
// containerd installed (the e2e run installs it; the test images it builds itself).
func podsExpected() bool {
	_, err := os.Stat("/usr/bin/containerd")
	return err == nil && os.Geteuid() == 0
}

// nodeReady reports whether 'kubectl get nodes' shows node Ready with the edge role.
func nodeReady(t *testing.T, kubeconfig, node string) bool {
	out, err := harness.KubectlWith(t, kubeconfig, "get", "nodes", "--no-headers")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == node && f[1] == "Ready" && f[2] == "edge" {
			return true
		}
	}
	return false
}

// helloEdge returns the sample Deployment's pod when 'kubectl get pods -o wide' shows exactly
// one, Running on edge-1, with its IP and container ID.
func helloEdge(t *testing.T, kubeconfig string) (name, ip, containerID string, ok bool) {
	out, err := harness.KubectlWith(t, kubeconfig, "get", "pods", "-n", "default", "-l", "app=hello-edge", "-o", "wide", "--no-headers")
	if err != nil || strings.Count(out, "\n") != 0 {
		return "", "", "", false
	}
	f := strings.Fields(out)
	if len(f) < 7 || f[2] != "Running" || f[6] != "edge-1" {
		return "", "", "", false
	}
	containerID, err = harness.KubectlWith(t, kubeconfig, "get", "pod", f[0], "-n", "default", "-o",
		"jsonpath={.status.containerStatuses[0].containerID}")
	return f[0], f[5], containerID, err == nil && containerID != ""
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
// start resumes with the same data. Where containerd can run, edge-1 is a Ready Node running the
// sample Deployment's pod, whose containers, shims and mounts the stop removes and the second
// start runs again; elsewhere edgetwin dev says it runs no pods.
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

	pods := podsExpected()
	var podIP, containerID string
	if pods {
		if !strings.Contains(dev.Output(), "edge-1 will run pods") {
			t.Fatalf("edgetwin dev as root with containerd installed did not run pods on edge-1:\n%s", dev.Output())
		}
		harness.WaitFor(t, "kubectl get nodes to show edge-1 Ready with the edge role", func() bool {
			return nodeReady(t, kubeconfig, "edge-1")
		})
		var pod string
		harness.WaitFor(t, "the sample Deployment's pod Running on edge-1", func() bool {
			var ok bool
			pod, podIP, containerID, ok = helloEdge(t, kubeconfig)
			return ok
		})
		// Its container is a process on this machine, with the pod's IP in its environment.
		if procs := withEnv("POD_IP=" + podIP); len(procs) == 0 {
			t.Fatalf("no process has POD_IP=%s in its environment: pod %s does not really run here", podIP, pod)
		}
	} else if !strings.Contains(dev.Output(), "No pods on the edge nodes: ") {
		t.Fatalf("edgetwin dev without root or containerd did not say why it runs no pods:\n%s", dev.Output())
	}

	dev.Stop(t)
	if err := dev.ExitErr(); err != nil {
		t.Fatalf("edgetwin dev exited with %v after SIGTERM:\n%s", err, dev.Output())
	}
	// The marks cover edge-1's containerd and its shims (their command lines name its directory).
	if left := leftovers(marks...); len(left) > 0 {
		t.Fatalf("processes left after edgetwin dev stopped:\n%s", strings.Join(left, "\n"))
	}
	if pods {
		if left := withEnv("POD_IP=" + podIP); len(left) > 0 {
			t.Fatalf("the pod's containers still run after edgetwin dev stopped:\n%s", strings.Join(left, "\n"))
		}
	}
	if left := mountsUnder(t, dir); len(left) > 0 {
		t.Fatalf("mounts left under %s after edgetwin dev stopped:\n%s", dir, strings.Join(left, "\n"))
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
	if pods {
		// The pod runs again, in a new container: edge-1's store still holds it.
		harness.WaitFor(t, "the sample Deployment's pod Running on edge-1 in a new container", func() bool {
			_, _, id, ok := helloEdge(t, kubeconfig)
			return ok && id != containerID
		})
	}
	dev.Stop(t)
	if left := leftovers(marks...); len(left) > 0 {
		t.Fatalf("processes left after the second stop:\n%s", strings.Join(left, "\n"))
	}
	if left := mountsUnder(t, dir); len(left) > 0 {
		t.Fatalf("mounts left under %s after the second stop:\n%s", dir, strings.Join(left, "\n"))
	}
}
