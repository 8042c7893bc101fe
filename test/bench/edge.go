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

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/pkg/sim"
)

// realEdge is one real edgecore with its internal broker and the simulator.
type realEdge struct {
	node, binary  string
	edgecore, sim *exec.Cmd
	metrics       string
	simHTTP       string
}

// process starts binary from the env's bin dir, its output in logName.log in the env's directory.
func (e *Env) process(logName, binary string, args ...string) (*exec.Cmd, error) {
	f, err := os.OpenFile(filepath.Join(e.Dir, logName+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(e.BinDir, binary), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); _ = f.Close() }()
	return cmd, nil
}

func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for range 100 {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

// startRealEdge joins a real edgecore (binary, in the Env's BinDir) as node, with its internal
// broker, and a simulator.
func startRealEdge(ctx context.Context, e *Env, node, binary string, reportEvery time.Duration) (*realEdge, error) {
	token, err := join.Create(ctx, e.Client, Namespace, node, time.Hour, e.CA)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(e.Dir, node)
	brokerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	broker := fmt.Sprintf("127.0.0.1:%d", brokerPort)
	server := fmt.Sprintf("https://127.0.0.1:%d", e.HubPort)
	out, err := exec.CommandContext(ctx, filepath.Join(e.BinDir, binary), "join", "--server", server,
		"--token", token, "--name", node, "--data-dir", dataDir, "--broker-address", broker).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("edgecore join: %w\n%s", err, out)
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	simPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	re := &realEdge{node: node, binary: binary, metrics: fmt.Sprintf("127.0.0.1:%d", metricsPort),
		simHTTP: fmt.Sprintf("127.0.0.1:%d", simPort)}
	re.edgecore, err = e.process("edgecore-"+node, binary, "run", "--data-dir", dataDir,
		"--metrics-bind-address", re.metrics, "--profiling")
	if err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, time.Minute, 100*time.Millisecond, func() bool {
		return httpOK("http://" + re.metrics + "/readyz")
	}); err != nil {
		re.stop()
		return nil, fmt.Errorf("edgecore did not get ready: %w", err)
	}
	simArgs := []string{"--broker", "tcp://" + broker, "--node", node, "--http-address", re.simHTTP}
	if reportEvery > 0 {
		simArgs = append(simArgs, "--report-interval", reportEvery.String())
	}
	re.sim, err = e.process("sim-"+node, "edgetwin-sim", simArgs...)
	if err != nil {
		re.stop()
		return nil, err
	}
	if err := waitUntil(ctx, time.Minute, 100*time.Millisecond, func() bool {
		return httpOK("http://" + re.simHTTP + "/healthz")
	}); err != nil {
		re.stop()
		return nil, fmt.Errorf("the simulator did not connect: %w", err)
	}
	return re, nil
}

func (re *realEdge) stop() {
	stopProcess(re.sim)
	stopProcess(re.edgecore)
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// simDevices returns how many devices the simulator drives.
func (re *realEdge) simDevices() int {
	resp, err := http.Get("http://" + re.simHTTP + "/devices")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	var devs []json.RawMessage
	if json.NewDecoder(resp.Body).Decode(&devs) != nil {
		return -1
	}
	return len(devs)
}

// simEvents returns the simulator's recent events.
func (re *realEdge) simEvents() []sim.Event {
	resp, err := http.Get("http://" + re.simHTTP + "/events")
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

// DeviceOnlyEdgecore is the device-only build of edgecore (go build -tags noedged) in the bin
// directory; EdgeFootprint measures it too when it is there ('make build' makes it).
const DeviceOnlyEdgecore = "edgecore-noedged"

// EdgeFootprint runs one real edgecore with devices on its internal broker, driven by the
// simulator, and measures its memory, binary size and CPU; then it patches desired values at
// rate per second for d and measures the time from each patch to the simulator (the mapper)
// receiving the delta: the whole path, cloud to device. With the device-only edgecore in the
// bin directory, it then measures that one's footprint the same way, on a node of its own.
func EdgeFootprint(ctx context.Context, e *Env, devices, rate int, d, reportEvery time.Duration) (*Result, error) {
	if reportEvery <= 0 {
		reportEvery = time.Second
	}
	r := newResult("edge-footprint and end-to-end fan-out", map[string]any{paramDevices: devices,
		"patches_per_second": rate, paramSeconds: d.Seconds(), "mapper_reports_every": reportEvery.String()})
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DeviceNamespace}}); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		return nil, err
	}
	model := &v1alpha1.DeviceModel{ObjectMeta: metav1.ObjectMeta{Namespace: DeviceNamespace, Name: "real-thermostat"},
		Spec: v1alpha1.DeviceModelSpec{Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: "temperature", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadOnly},
			{Name: setpoint, Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite},
		}}}
	if err := e.Client.Create(ctx, model); err != nil {
		return nil, err
	}
	re, names, err := startRealEdgeWithDevices(ctx, e, "real-edge", "edgecore", "real", devices, reportEvery)
	if err != nil {
		return nil, err
	}
	defer re.stop()
	if err := measureFootprint(r, e, re, "edgecore", reportEvery); err != nil {
		return nil, err
	}
	if err := fanOutToMapper(ctx, r, e, re, names, rate, d); err != nil {
		return nil, err
	}
	re.stop() // its CPU would weigh on the next measurement
	if _, err := os.Stat(filepath.Join(e.BinDir, DeviceOnlyEdgecore)); errors.Is(err, fs.ErrNotExist) {
		return r, nil
	} else if err != nil {
		return nil, err
	}
	lite, _, err := startRealEdgeWithDevices(ctx, e, "real-edge-noedged", DeviceOnlyEdgecore, "noedged", devices, reportEvery)
	if err != nil {
		return nil, fmt.Errorf("the device-only edgecore: %w", err)
	}
	defer lite.stop()
	if err := measureFootprint(r, e, lite, "device-only edgecore (noedged)", reportEvery); err != nil {
		return nil, err
	}
	return r, nil
}

// startRealEdgeWithDevices starts a real edge node and gives it n devices of the real-thermostat
// model, named prefix-0 and on; it returns once the simulator drives all of them.
func startRealEdgeWithDevices(ctx context.Context, e *Env, node, binary, prefix string, n int,
	reportEvery time.Duration) (*realEdge, []types.NamespacedName, error) {
	re, err := startRealEdge(ctx, e, node, binary, reportEvery)
	if err != nil {
		return nil, nil, err
	}
	names := make([]types.NamespacedName, n)
	if err := parallel(ctx, n, 16, func(i int) error {
		dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: DeviceNamespace, Name: fmt.Sprintf("%s-%d", prefix, i)},
			Spec: v1alpha1.DeviceSpec{ModelRef: v1alpha1.ModelReference{Name: "real-thermostat"}, NodeName: node,
				Properties: []v1alpha1.DeviceProperty{{Name: setpoint, Desired: new("20")}}}}
		names[i] = client.ObjectKeyFromObject(dev)
		return e.Client.Create(ctx, dev)
	}); err != nil {
		re.stop()
		return nil, nil, err
	}
	if err := waitUntil(ctx, 2*time.Minute, 200*time.Millisecond, func() bool { return re.simDevices() == n }); err != nil {
		re.stop()
		return nil, nil, fmt.Errorf("the simulator drives %d of %d devices: %w", re.simDevices(), n, err)
	}
	return re, names, nil
}

// measureFootprint records the edge's binary size, and its memory and CPU over 20 s once its
// devices have reported for 10 s, each figure named after what.
func measureFootprint(r *Result, e *Env, re *realEdge, what string, reportEvery time.Duration) error {
	bin, err := os.Stat(filepath.Join(e.BinDir, re.binary))
	if err != nil {
		return err
	}
	r.add(what+" binary size", float64(bin.Size())/(1<<20), "MiB")
	time.Sleep(10 * time.Second) // let it settle: every device reporting once a second
	p0, err := ReadProc(re.edgecore.Process.Pid)
	if err != nil {
		return err
	}
	const window = 20 * time.Second
	time.Sleep(window)
	p1, err := ReadProc(re.edgecore.Process.Pid)
	if err != nil {
		return err
	}
	r.add(what+" RSS, devices reporting every "+reportEvery.String(), float64(p1.RSSBytes)/(1<<20), "MiB")
	r.add(what+" RSS anonymous (heap, stacks, SQLite)", float64(p1.AnonBytes)/(1<<20), "MiB")
	r.add(what+" RSS file-backed (the binary's pages)", float64(p1.FileBytes)/(1<<20), "MiB")
	r.add(what+" file-backed RSS mapped in 2 MiB pages", float64(p1.FilePmdBytes)/(1<<20), "MiB")
	r.add(what+" peak RSS", float64(p1.PeakBytes)/(1<<20), "MiB")
	r.add(what+" CPU, devices reporting every "+reportEvery.String(), (p1.CPUSeconds-p0.CPUSeconds)/window.Seconds()*100, "% of a core")
	return nil
}

// fanOutToMapper patches desired values at rate per second for d across the devices of the
// real edge and records the time from each patch to the simulator receiving the delta.
func fanOutToMapper(ctx context.Context, r *Result, e *Env, re *realEdge, names []types.NamespacedName, rate int, d time.Duration) error {
	// Fan-out through the real edge to the mapper.
	type key struct{ device, value string }
	var mu sync.Mutex
	sent := map[key]time.Time{}
	last := map[string]string{}  // each device's last value: the one that must arrive
	var answered []time.Duration // patch → the API server's answer: the cloud's share before CloudHub
	total := int(float64(rate) * d.Seconds())
	// Patches to one device go one at a time, in order, as a controller's work queue sends
	// them; devices go in parallel. Each patch is timed from when the schedule meant to send
	// it, so a patch held behind its device's previous one counts that wait.
	lanes := make([]chan int, len(names))
	var wg sync.WaitGroup
	for l := range lanes {
		lanes[l] = make(chan int, total)
		dev := names[l]
		wg.Go(func() {
			for i := range lanes[l] {
				value := strconv.Itoa(100 + i) // never repeated, so each patch is a change with its own arrival
				patch := fmt.Appendf(nil, `{"spec":{"properties":[{"name":"setpoint","desired":%q}]}}`, value)
				obj := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: dev.Namespace, Name: dev.Name}}
				if err := e.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err == nil {
					mu.Lock()
					answered = append(answered, time.Since(sent[key{dev.String(), value}]))
					mu.Unlock()
				}
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range total {
		select {
		case <-ctx.Done():
			for _, l := range lanes {
				close(l)
			}
			wg.Wait()
			return ctx.Err()
		case <-tick.C:
		}
		dev := names[i%len(names)]
		mu.Lock()
		sent[key{dev.String(), strconv.Itoa(100 + i)}] = time.Now()
		last[dev.String()] = strconv.Itoa(100 + i)
		mu.Unlock()
		lanes[i%len(names)] <- i
	}
	for _, l := range lanes {
		close(l)
	}
	wg.Wait()
	arrived := func() map[key]time.Time {
		got := map[key]time.Time{}
		for _, ev := range re.simEvents() {
			if ev.Type != sim.EventDelta {
				continue
			}
			for f := range strings.FieldsSeq(ev.Detail) {
				if v, ok := strings.CutPrefix(f, "setpoint="); ok {
					k := key{ev.Device, v}
					if _, seen := got[k]; !seen {
						got[k] = ev.Time
					}
				}
			}
		}
		return got
	}
	// Desired values are level-based: a value replaced before it reached the edge is coalesced
	// away, and only a device's last value must arrive.
	_ = waitUntil(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		got := arrived()
		for dev, v := range last {
			if _, ok := got[key{dev, v}]; !ok {
				return false
			}
		}
		return true
	})
	got := arrived()
	lat := make([]time.Duration, 0, len(sent))
	for k, at := range sent {
		switch a, ok := got[k]; {
		case ok:
			lat = append(lat, a.Sub(at))
		case last[k.device] == k.value:
			r.Lost++
		default:
			r.Coalesced++
		}
	}
	r.addPercentiles("patch → the API server answered", answered)
	r.addLatencies("patch → mapper got the delta (real edgecore)", lat)
	return nil
}
