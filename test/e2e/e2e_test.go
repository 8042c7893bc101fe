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

// Package e2e runs edgetwin the way a user does: the envtest-built API server and etcd,
// cloudcore, an edgecore joined with a token from 'edgetwin token create', mosquitto, and the
// device simulator, all as real processes, and everything checked through real kubectl.
// 'make test-e2e' runs it (build tag e2e).
package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/pkg/controlplane"
	"github.com/edgetwin/edgetwin/pkg/sim"
	"github.com/edgetwin/edgetwin/test/harness"
)

var cl *harness.Cluster

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	var err error
	// The scheduler and controller-manager too: the workloads story runs Deployments.
	if cl, err = harness.SetupWith(controlplane.Options{Scheduler: true, ControllerManager: true},
		"cloudcore", "edgecore", "edgetwin", "edgetwin-sim"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cl.Close()
	return m.Run()
}

const node = "edge-1" // the samples' edge node

// site is one running edge site and the cloud it talks to.
type site struct {
	root        *testing.T // processes live as long as the whole test
	t           *testing.T // the current step
	cloud       *harness.Cloudcore
	hubPort     int
	edge        *harness.Proc
	dataDir     string
	edgeMetrics string
	broker      string
	simulator   *harness.Proc
	simHTTP     string
}

func (s *site) startEdge() {
	s.edge = cl.Start(s.root, "edgecore", "run", "--data-dir", s.dataDir, "--metrics-bind-address", s.edgeMetrics)
}

func (s *site) startSimulator() {
	s.simulator = cl.Start(s.root, "edgetwin-sim", "--broker", "tcp://"+s.broker, "--node", node,
		"--report-interval", "500ms", "--http-address", s.simHTTP)
	harness.WaitFor(s.t, "the simulator to be connected", func() bool { return harness.HTTPOK("http://" + s.simHTTP + "/healthz") })
}

// kubectl runs kubectl and fails the test if it fails.
func (s *site) kubectl(args ...string) string {
	s.t.Helper()
	out, err := cl.KubectlErr(s.t, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// jsonpath returns a field of an object through kubectl, or "" while it cannot be read.
func (s *site) jsonpath(kind, name, path string) string {
	out, err := cl.KubectlErr(s.t, "get", kind, name, "-n", "default", "-o", "jsonpath="+path)
	if err != nil {
		return ""
	}
	return out
}

// events returns what the simulator has seen.
func (s *site) events() []sim.Event {
	resp, err := http.Get("http://" + s.simHTTP + "/events")
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	var evs []sim.Event
	if json.NewDecoder(resp.Body).Decode(&evs) != nil {
		return nil
	}
	return evs
}

// saw reports whether the simulator has seen an event of typ for device whose detail contains detail.
func (s *site) saw(typ, device, detail string) bool {
	for _, e := range s.events() {
		if e.Type == typ && e.Device == device && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// devicesTable is 'kubectl get devices' as rows of cells.
func (s *site) devicesTable() [][]string {
	out, err := cl.KubectlErr(s.t, "get", "devices", "-n", "default")
	if err != nil {
		return nil
	}
	var rows [][]string
	for line := range strings.SplitSeq(out, "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// stateAndSynced returns the STATE and SYNCED columns of a device's row.
func (s *site) stateAndSynced(device string) string {
	for _, row := range s.devicesTable() {
		if len(row) >= 5 && row[0] == device {
			return row[3] + " " + row[4]
		}
	}
	return ""
}

// setSetpoint changes a thermostat's desired setpoint (its first property in the samples).
func setSetpoint(s *site, device, value string) {
	s.t.Helper()
	s.kubectl("patch", "device", device, "-n", "default", "--type=json",
		"-p", fmt.Sprintf(`[{"op":"test","path":"/spec/properties/0/name","value":"setpoint"},`+
			`{"op":"replace","path":"/spec/properties/0/desired","value":%q}]`, value))
}

// dumpOnFailure prints every object as kubectl sees it when the test fails; the harness prints
// every process's output.
func dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out, _ := cl.KubectlErr(t, "get", "edgenodes,devicemodels,devices", "-A", "-o", "yaml")
		t.Logf("kubectl get edgenodes,devicemodels,devices -A -o yaml:\n%s", out)
	})
}

// TestDevicesEndToEnd is the whole device loop as a user sees it.
func TestDevicesEndToEnd(t *testing.T) {
	dumpOnFailure(t)
	s := &site{root: t, t: t, hubPort: harness.FreePort(t), dataDir: t.TempDir(), edgeMetrics: harness.LoopbackAddr(t),
		simHTTP: harness.LoopbackAddr(t)}
	s.cloud = cl.StartCloudcore(t, s.hubPort)
	s.broker = harness.StartMosquitto(t)

	// The user applies the samples and joins the edge node with a token.
	out := s.kubectl("apply", "-f", filepath.Join(harness.RepoRoot(), "config", "samples"))
	for _, want := range []string{"devicemodel.edgetwin.dev/thermostat created", "device.edgetwin.dev/lobby-thermostat created",
		"device.edgetwin.dev/office-thermostat created", "edgenode.edgetwin.dev/edge-1 created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kubectl apply said %q; want %q", out, want)
		}
	}
	tokenOut, code := cl.Run(t, "edgetwin", "token", "create", node, "--kubeconfig", cl.Kubeconfig,
		"--namespace", harness.SystemNamespace, "--server", s.cloud.ServerURL())
	if code != 0 {
		t.Fatalf("edgetwin token create exited %d:\n%s", code, tokenOut)
	}
	token := tokenFrom(t, tokenOut)
	if out, code := cl.Run(t, "edgecore", "join", "--server", s.cloud.ServerURL(), "--token", token, "--name", node,
		"--data-dir", s.dataDir, "--broker-mode", "external", "--broker-address", s.broker); code != 0 {
		t.Fatalf("edgecore join exited %d:\n%s", code, out)
	}
	s.startEdge()
	s.startSimulator()

	step(t, s, "the devices come Online with reported temperatures", func(t *testing.T) {
		harness.WaitFor(t, "both devices Online and Synced in kubectl get devices", func() bool {
			return s.stateAndSynced("lobby-thermostat") == "Online True" && s.stateAndSynced("office-thermostat") == "Online True"
		})
		twins := s.jsonpath("device", "lobby-thermostat", "{.status.twins}")
		if !strings.Contains(twins, `"name":"temperature"`) || !strings.Contains(twins, `"reported":{`) {
			t.Fatalf("lobby-thermostat's twins = %s; want a reported temperature", twins)
		}
		t.Logf("kubectl get devices:\n%s", s.kubectl("get", "devices", "-n", "default"))
		t.Logf("the twins of lobby-thermostat:\n%s", s.kubectl("get", "device", "lobby-thermostat", "-n", "default", "-o",
			`jsonpath={range .status.twins[*]}{.name}{"\tdesired="}{.desired.value}{"\treported="}{.reported.value}{"\n"}{end}`))
		harness.WaitFor(t, "kubectl get edgenode to show the node connected", func() bool {
			return s.jsonpath("edgenode", node, `{.status.conditions[?(@.type=="Connected")].status}`) == "True"
		})
	})

	step(t, s, "a desired setpoint reaches the simulator and is reported back", func(t *testing.T) {
		setSetpoint(s, "lobby-thermostat", "25")
		harness.WaitFor(t, "the simulator to receive the delta", func() bool { return s.saw(sim.EventDelta, "default/lobby-thermostat", "setpoint=25") })
		harness.WaitFor(t, "the reported setpoint 25 and SYNCED=True", func() bool {
			return s.jsonpath("device", "lobby-thermostat", `{.status.twins[?(@.name=="setpoint")].reported.value}`) == "25" &&
				s.jsonpath("device", "lobby-thermostat", `{.status.conditions[?(@.type=="Synced")].status}`) == "True"
		})
		if got := s.jsonpath("device", "lobby-thermostat", `{.status.twins[?(@.name=="setpoint")].desired.value}`); got != "25" {
			t.Fatalf("the desired value the edge acknowledged = %q, want 25", got)
		}
	})

	step(t, s, "a change made while edgecore is down reaches the simulator when it returns", func(t *testing.T) {
		s.edge.Stop(t)
		setSetpoint(s, "lobby-thermostat", "19")
		harness.WaitFor(t, "the device to wait for the value", func() bool {
			return s.jsonpath("device", "lobby-thermostat", `{.status.conditions[?(@.type=="Synced")].status}`) == "False"
		})
		if s.saw(sim.EventDelta, "default/lobby-thermostat", "setpoint=19") {
			t.Fatal("the simulator got setpoint 19 while edgecore was down")
		}
		s.startEdge()
		harness.WaitFor(t, "the simulator to receive setpoint 19", func() bool { return s.saw(sim.EventDelta, "default/lobby-thermostat", "setpoint=19") })
		harness.WaitFor(t, "SYNCED=True at 19", func() bool {
			return s.jsonpath("device", "lobby-thermostat", `{.status.twins[?(@.name=="setpoint")].reported.value}`) == "19" &&
				s.stateAndSynced("lobby-thermostat") == "Online True"
		})
	})

	step(t, s, "reports made while cloudcore is down reach the status when it returns", func(t *testing.T) {
		s.cloud.Stop(t)
		harness.WaitFor(t, "edgecore to notice", func() bool { return harness.Metric(s.edgeMetrics, "edgetwin_edgehub_connected") == 0 })
		down := time.Now()
		accepted := harness.Metric(s.edgeMetrics, "edgetwin_twin_reports_accepted_total")
		harness.WaitFor(t, "the simulator to report to the disconnected edge", func() bool {
			return harness.Metric(s.edgeMetrics, "edgetwin_twin_reports_accepted_total") >= accepted+4
		})
		// The simulator stops while the cloud is away; its last words (the devices go offline)
		// exist only in the edge's outbox now.
		s.simulator.Stop(t)
		if pending := harness.Metric(s.edgeMetrics, "edgetwin_edgehub_outbox_pending"); pending < 1 {
			t.Fatalf("the outbox holds %v reports while the cloud is away; want them kept", pending)
		}
		back := time.Now()
		s.cloud = cl.StartCloudcore(s.root, s.hubPort)
		harness.WaitFor(t, "the outbox to drain", func() bool { return harness.Metric(s.edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })
		harness.WaitFor(t, "kubectl to show the devices Offline, as the simulator said while the cloud was away", func() bool {
			return strings.HasPrefix(s.stateAndSynced("lobby-thermostat"), "Offline") && strings.HasPrefix(s.stateAndSynced("office-thermostat"), "Offline")
		})
		ts := s.jsonpath("device", "lobby-thermostat", `{.status.twins[?(@.name=="temperature")].reported.timestamp}`)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("the reported temperature's timestamp %q: %v", ts, err)
		}
		if at.Before(down.Add(-time.Second)) || at.After(back) {
			t.Fatalf("the reported temperature is from %s; want a report made during the outage (%s to %s)", at, down, back)
		}
		s.startSimulator()
		harness.WaitFor(t, "the devices Online again", func() bool {
			return s.stateAndSynced("lobby-thermostat") == "Online True" && s.stateAndSynced("office-thermostat") == "Online True"
		})
	})

	step(t, s, "an invalid desired value is refused with a condition and never delivered", func(t *testing.T) {
		setSetpoint(s, "office-thermostat", "99") // above the model's maximum of 30
		harness.WaitFor(t, "ModelResolved=False naming the setpoint", func() bool {
			return s.jsonpath("device", "office-thermostat", `{.status.conditions[?(@.type=="ModelResolved")].reason}`) == "ValueOutOfRange" &&
				strings.Contains(s.jsonpath("device", "office-thermostat", `{.status.conditions[?(@.type=="ModelResolved")].message}`), "setpoint")
		})
		s.kubectl("patch", "device", "lobby-thermostat", "-n", "default", "--type=json",
			"-p", `[{"op":"test","path":"/spec/properties/2/name","value":"temperature"},{"op":"add","path":"/spec/properties/2/desired","value":"20"}]`)
		harness.WaitFor(t, "ModelResolved=False for the ReadOnly temperature", func() bool {
			return s.jsonpath("device", "lobby-thermostat", `{.status.conditions[?(@.type=="ModelResolved")].reason}`) == "PropertyReadOnly"
		})
		// A later, valid change to the same device does reach the simulator; the refused values
		// must not have reached it before or with it.
		setSetpoint(s, "lobby-thermostat", "21")
		harness.WaitFor(t, "the valid setpoint 21 to arrive", func() bool { return s.saw(sim.EventDelta, "default/lobby-thermostat", "setpoint=21") })
		if s.saw(sim.EventDelta, "default/office-thermostat", "setpoint=99") || s.saw(sim.EventDelta, "default/lobby-thermostat", "temperature=20") {
			t.Fatalf("a refused desired value reached the simulator: %+v", s.events())
		}
	})

	step(t, s, "deleting a device removes it from the edge", func(t *testing.T) {
		s.kubectl("delete", "device", "office-thermostat", "-n", "default", "--wait=true", "--timeout=60s")
		harness.WaitFor(t, "the simulator to see the membership removal", func() bool {
			return s.saw(sim.EventRemoved, "default/office-thermostat", "")
		})
		if out, err := cl.KubectlErr(t, "get", "device", "office-thermostat", "-n", "default"); err == nil || !strings.Contains(out, "NotFound") {
			t.Fatalf("kubectl get of the deleted device: %v %s", err, out)
		}
		harness.WaitFor(t, "edgecore to hold one device", func() bool { return harness.Metric(s.edgeMetrics, "edgetwin_twin_devices") == 1 })
		t.Logf("kubectl get devices:\n%s", s.kubectl("get", "devices", "-n", "default", "-o", "wide"))
	})
}

// step runs one step of the story as a subtest; a failed step ends the story, since every later
// step builds on it.
func step(t *testing.T, s *site, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, func(t *testing.T) { s.t = t; f(t) }) {
		t.FailNow()
	}
	s.t = t
}

// tokenFrom picks the token out of 'edgetwin token create' output: its first line.
func tokenFrom(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.TrimSpace(line); f != "" && !strings.Contains(f, " ") {
			return f
		}
	}
	t.Fatalf("no token in:\n%s", out)
	return ""
}
