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

// Package devenv is 'edgetwin dev': a whole edgetwin on one machine — a control plane with a
// scheduler and a controller manager (or an existing cluster), cloudcore, edge nodes joined
// through the real token flow, each with its own MQTT broker, and simulated devices — as real
// processes, with its state in one directory so that the next start resumes where the last one
// stopped. When containerd can run here, edge-1 also runs pods: Edged on a containerd of its own,
// which the stop tears down with every container.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/config/crd"
	"github.com/edgetwin/edgetwin/config/samples"
	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// Namespace is cloudcore's namespace in the environment.
const Namespace = "edgetwin-system"

// Options configure the environment.
type Options struct {
	// Dir holds all state: etcd's data, certificates, edge data directories, logs.
	Dir string
	// Fresh removes Dir's state first.
	Fresh bool
	// Edges is the number of edge nodes, edge-1 .. edge-N (at least 1: the samples use edge-1).
	Edges int
	// Devices is the number of simulated thermostats added to the samples' two, spread over the
	// edge nodes.
	Devices int
	// Kubeconfig, when set, names an existing cluster to use instead of a local control plane.
	Kubeconfig string
	// Mosquitto gives each edge node its own mosquitto process instead of edgecore's internal
	// broker.
	Mosquitto bool
	// HubPort is CloudHub's port on loopback.
	HubPort int
	// BinDir holds cloudcore, edgecore and edgetwin-sim.
	BinDir string
	// BuildControlPlane builds the control-plane binaries when they are missing; nil makes their
	// absence an error.
	BuildControlPlane func(ctx context.Context) error
	// TestImages builds (or finds) the test images and returns the directory holding pause.tar
	// and workload.tar, which PodsNode's containerd imports; nil, or an error, leaves every edge
	// node serving devices only.
	TestImages func(ctx context.Context) (string, error)
	// Out receives progress and instructions for people.
	Out io.Writer
}

// env is a running environment.
type env struct {
	o          Options
	out        io.Writer
	sup        *supervisor
	kubeconfig string
	client     client.Client
	hubURL     string
	started    time.Time
	edges      []edgeInfo
	cloudcore  string // metrics address
	// cpExited reports the local control plane's kube-scheduler or kube-controller-manager
	// ending on its own; nil with an existing cluster.
	cpExited <-chan error
	// pods is how PodsNode runs pods; nil when containerd cannot run here.
	pods *podRuntime
}

type edgeInfo struct {
	name, broker, metrics, sim string
	pods                       *podRuntime
}

// Run starts the environment and keeps it running until ctx ends or one of its processes
// exits; then it stops everything it started. It returns nil after a stop asked for through ctx.
func Run(ctx context.Context, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	// A run that was killed leaves edge-1's containers running and their file systems mounted
	// under the directory: clear them first, whether the state is resumed or removed.
	if err := purgeLeftovers(o.Dir); err != nil {
		_, _ = fmt.Fprintf(o.Out, "Cleaning up the containers an earlier run left: %v\n", err)
	}
	if o.Fresh {
		if err := os.RemoveAll(o.Dir); err != nil {
			return fmt.Errorf("removing %s: %w", o.Dir, err)
		}
	}
	logDir := filepath.Join(o.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	unlock, err := lock(o.Dir)
	if err != nil {
		return err
	}
	defer unlock()

	e := &env{o: o, out: o.Out, sup: newSupervisor(logDir), started: time.Now(),
		hubURL: fmt.Sprintf("https://127.0.0.1:%d", o.HubPort)}
	stopControlPlane := func() {}
	// Clients first (simulators, edge nodes, cloudcore, brokers, newest first), then the API
	// server and etcd, which would otherwise wait for the clients' watches to end.
	defer func() {
		e.say("Stopping every process edgetwin dev started")
		e.sup.stopAll()
		e.stopPods()
		stopControlPlane()
		e.say("Stopped")
	}()
	stopControlPlane, err = e.cluster(ctx)
	if err != nil {
		return err
	}
	e.decidePods(ctx)
	if err := e.startAll(ctx); err != nil {
		return err
	}
	e.instructions()

	select {
	case <-ctx.Done():
		return nil
	case c := <-e.sup.exited:
		return fmt.Errorf("%s %s; everything is being stopped. The end of %s:\n%s", c.name, c.how(), c.log, c.tail())
	case err := <-e.cpExited:
		return fmt.Errorf("%w; everything is being stopped", err)
	}
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return errors.New("a state directory is needed (--dir)")
	case o.Edges < 1:
		return fmt.Errorf("--edges must be at least 1 (the samples use edge-1), got %d", o.Edges)
	case o.Devices < 0:
		return fmt.Errorf("--devices must not be negative, got %d", o.Devices)
	case o.HubPort <= 0 || o.HubPort > 65535:
		return fmt.Errorf("--hub-port %d is not a port", o.HubPort)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = abs
	for _, bin := range []string{"cloudcore", "edgecore", "edgetwin-sim"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, bin)); err != nil {
			return fmt.Errorf("%s is not in %s: build the binaries first ('make build' puts them in bin/)", bin, o.BinDir)
		}
	}
	if o.Mosquitto {
		if _, err := mosquittoPath(); err != nil {
			return err
		}
	}
	return nil
}

// say prints one progress line with the time since the start.
func (e *env) say(format string, args ...any) {
	_, _ = fmt.Fprintf(e.out, "[%5.1fs] %s\n", time.Since(e.started).Seconds(), fmt.Sprintf(format, args...))
}

// cluster starts the local control plane (or connects to the given cluster), makes sure the
// CRDs and cloudcore's namespace are there, and returns how to stop what it started.
func (e *env) cluster(ctx context.Context) (stop func(), err error) {
	stop = func() {}
	var cfg *rest.Config
	if e.o.Kubeconfig != "" {
		e.kubeconfig = e.o.Kubeconfig
		if cfg, err = clientcmd.BuildConfigFromFlags("", e.o.Kubeconfig); err != nil {
			return stop, fmt.Errorf("loading %s: %w", e.o.Kubeconfig, err)
		}
		e.say("Using the cluster of %s", e.o.Kubeconfig)
	} else {
		if err := e.ensureControlPlaneBinaries(ctx); err != nil {
			return stop, err
		}
		e.say("Starting kube-apiserver, etcd, kube-scheduler and kube-controller-manager (data in %s)", filepath.Join(e.o.Dir, "etcd"))
		// etcd's data is kept; the API server's certificates are made anew on every start
		// (envtest only learns its CA by generating it).
		if err := os.RemoveAll(filepath.Join(e.o.Dir, "apiserver")); err != nil {
			return stop, err
		}
		cp, err := controlplane.StartWith(controlplane.Options{
			DataDir: filepath.Join(e.o.Dir, "etcd"), CertDir: filepath.Join(e.o.Dir, "apiserver"),
			Scheduler: true, ControllerManager: true, LogDir: filepath.Join(e.o.Dir, "logs")})
		if err != nil {
			return stop, err
		}
		e.cpExited = cp.Exited()
		stop = func() {
			e.say("Stopping kube-scheduler, kube-controller-manager, kube-apiserver and etcd")
			if err := cp.Stop(); err != nil {
				e.say("Stopping the control plane: %v", err)
			}
		}
		e.kubeconfig = filepath.Join(e.o.Dir, "kubeconfig")
		if err := cp.WriteKubeconfig(e.kubeconfig); err != nil {
			return stop, err
		}
		cfg = cp.Config
		e.say("The API server is up; for kubectl:\n\n    export KUBECONFIG=%s\n", e.kubeconfig)
	}
	scheme, err := controlplane.NewScheme()
	if err != nil {
		return stop, err
	}
	if e.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return stop, fmt.Errorf("connecting to the API server: %w", err)
	}
	if e.o.Kubeconfig != "" {
		if err := e.installCRDs(ctx); err != nil {
			return stop, err
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := e.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return stop, fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	return stop, nil
}

// controlPlaneBinaries are what the local control plane runs, from controlplane.AssetsDir.
var controlPlaneBinaries = []string{"kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"}

func (e *env) ensureControlPlaneBinaries(ctx context.Context) error {
	dir := controlplane.AssetsDir()
	var missing []string
	for _, bin := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if e.o.BuildControlPlane == nil {
		return fmt.Errorf("%s missing from %s: run 'make control-plane' in the edgetwin checkout", strings.Join(missing, ", "), dir)
	}
	e.say("Building %s into %s: the first time only, up to about 15 minutes on 2 cores", strings.Join(missing, ", "), dir)
	if err := e.o.BuildControlPlane(ctx); err != nil {
		return fmt.Errorf("building the control plane: %w", err)
	}
	return nil
}

// installCRDs creates the embedded CRDs in an existing cluster, or updates them to this
// edgetwin's.
func (e *env) installCRDs(ctx context.Context) error {
	crds, err := crd.CRDs()
	if err != nil {
		return err
	}
	for _, c := range crds {
		existing := &apiextensionsv1.CustomResourceDefinition{}
		err := e.client.Get(ctx, client.ObjectKeyFromObject(c), existing)
		switch {
		case apierrors.IsNotFound(err):
			err = e.client.Create(ctx, c)
		case err == nil:
			c.ResourceVersion = existing.ResourceVersion // this edgetwin's CRD replaces an older one
			err = e.client.Update(ctx, c)
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", c.Name, err)
		}
	}
	if err := e.waitEstablished(ctx, crds); err != nil {
		return err
	}
	e.say("Installed the edgetwin.dev CRDs")
	return nil
}

// startAll starts cloudcore, applies the samples, joins and starts the edge nodes and starts a
// simulator on each.
func (e *env) startAll(ctx context.Context) error {
	metrics, err := freePort()
	if err != nil {
		return err
	}
	probe, err := freePort()
	if err != nil {
		return err
	}
	e.cloudcore = fmt.Sprintf("127.0.0.1:%d", metrics)
	cc, err := e.sup.start("cloudcore", filepath.Join(e.o.BinDir, "cloudcore"), "--kubeconfig", e.kubeconfig,
		"--namespace", Namespace, "--hub-bind-address", fmt.Sprintf("127.0.0.1:%d", e.o.HubPort), "--advertise-address", "127.0.0.1",
		"--metrics-bind-address", e.cloudcore, "--metrics-secure=false", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe))
	if err != nil {
		return err
	}
	e.say("Starting cloudcore (CloudHub on %s)", e.hubURL)
	if err := waitReady(ctx, cc, fmt.Sprintf("http://127.0.0.1:%d/readyz", probe), 2*time.Minute); err != nil {
		return err
	}
	if err := e.applySamples(ctx); err != nil {
		return err
	}
	for i := 1; i <= e.o.Edges; i++ {
		node := fmt.Sprintf("edge-%d", i)
		var pods *podRuntime
		if node == PodsNode {
			pods = e.pods
		}
		if err := e.startEdge(ctx, node, pods); err != nil {
			return err
		}
	}
	return nil
}

// applySamples creates the sample model, node and devices, the extra thermostats and, when
// PodsNode runs pods, the sample workloads, unless they exist: a resumed environment keeps the
// values the user changed.
func (e *env) applySamples(ctx context.Context) error {
	objs, err := sampleObjects(e.pods != nil)
	if err != nil {
		return err
	}
	created := 0
	for _, obj := range objs {
		if err := e.client.Create(ctx, obj); err != nil {
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			return fmt.Errorf("creating sample %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		created++
	}
	for k := 1; k <= e.o.Devices; k++ {
		dev := &v1alpha1.Device{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("room-%d", k)},
			Spec: v1alpha1.DeviceSpec{
				ModelRef:   v1alpha1.ModelReference{Name: "thermostat"},
				NodeName:   fmt.Sprintf("edge-%d", (k-1)%e.o.Edges+1),
				Properties: []v1alpha1.DeviceProperty{{Name: "setpoint", Desired: new(fmt.Sprintf("%d", 19+k%5))}},
			},
		}
		if err := e.client.Create(ctx, dev); err != nil {
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			return fmt.Errorf("creating device %s: %w", dev.Name, err)
		}
		created++
	}
	switch {
	case created > 0 && e.pods != nil:
		e.say("Applied the samples, the sample Deployment for %s and %d simulated thermostats (%d objects created)",
			PodsNode, e.o.Devices, created)
	case created > 0:
		e.say("Applied the samples and %d simulated thermostats (%d objects created)", e.o.Devices, created)
	default:
		e.say("The samples and devices are there from the last run; kept as they are")
	}
	return nil
}

// sampleObjects returns the samples to apply, models and nodes before the devices that refer to
// them; the workloads only with a node that runs pods (elsewhere they would stay Pending).
func sampleObjects(withWorkloads bool) ([]*unstructured.Unstructured, error) {
	objs, err := samples.Objects()
	if err != nil {
		return nil, err
	}
	if withWorkloads {
		workloads, err := samples.Workloads()
		if err != nil {
			return nil, err
		}
		objs = append(objs, workloads...)
	}
	rank := map[string]int{"DeviceModel": 0, "EdgeNode": 1, "Device": 2}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		ra, oka := rank[a.GetKind()]
		rb, okb := rank[b.GetKind()]
		if !oka {
			ra = len(rank)
		}
		if !okb {
			rb = len(rank)
		}
		return ra - rb
	})
	return objs, nil
}

// startEdge joins the node (first run, or when its pod runtime changed), then starts its broker
// (mosquitto mode), its edgecore and its simulator. pods, when not nil, has the node run pods.
func (e *env) startEdge(ctx context.Context, node string, pods *podRuntime) error {
	dataDir := filepath.Join(e.o.Dir, "edges", node)
	broker, err := e.brokerAddress(dataDir)
	if err != nil {
		return err
	}
	if e.o.Mosquitto {
		if err := e.startMosquitto(ctx, node, dataDir, broker); err != nil {
			return err
		}
	}
	if why := joinNeeded(dataDir, pods); why != "" {
		if why != notJoined {
			e.say("%s %s; joining it again, its data kept", node, why)
		}
		if err := e.join(ctx, node, dataDir, broker, pods); err != nil {
			return err
		}
	} else {
		e.say("%s joined on an earlier run; resuming with its data in %s", node, dataDir)
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	info := edgeInfo{name: node, broker: broker, metrics: fmt.Sprintf("127.0.0.1:%d", metrics), pods: pods}
	ec, err := e.sup.start("edgecore-"+node, filepath.Join(e.o.BinDir, "edgecore"), "run", "--data-dir", dataDir,
		"--metrics-bind-address", info.metrics)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, ec, "http://"+info.metrics+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	simPort, err := freePort()
	if err != nil {
		return err
	}
	info.sim = fmt.Sprintf("127.0.0.1:%d", simPort)
	sim, err := e.sup.start("sim-"+node, filepath.Join(e.o.BinDir, "edgetwin-sim"), "--broker", "tcp://"+broker,
		"--node", node, "--http-address", info.sim)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, sim, "http://"+info.sim+"/healthz", time.Minute); err != nil {
		return err
	}
	if pods != nil {
		e.say("%s is up: edgecore synced with the cloud, %s, simulator driving its devices (broker %s)",
			node, pods.describe(), broker)
	} else {
		e.say("%s is up: edgecore synced with the cloud, simulator driving its devices (broker %s)", node, broker)
	}
	e.edges = append(e.edges, info)
	return nil
}

// brokerAddress returns the node's broker address, chosen on the first run and kept in the
// node's directory: edgecore's config and the simulator must agree on it across restarts.
func (e *env) brokerAddress(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "dev-broker-address")
	if raw, err := os.ReadFile(path); err == nil {
		return string(raw), nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return addr, os.WriteFile(path, []byte(addr), 0o600)
}

// join makes a token for node and runs 'edgecore join' with it, as a user would; with pods, the
// node gets edgecore's own containerd.
func (e *env) join(ctx context.Context, node, dataDir, broker string, pods *podRuntime) error {
	ca, err := pki.EnsureCA(ctx, e.client, Namespace, pki.DefaultCASecretName)
	if err != nil {
		return err
	}
	token, err := join.Create(ctx, e.client, Namespace, node, 10*time.Minute, ca)
	if err != nil {
		return fmt.Errorf("creating a join token for %s: %w", node, err)
	}
	mode := "internal"
	if e.o.Mosquitto {
		mode = "external"
	}
	args := []string{"join", "--server", e.hubURL, "--token", token, "--name", node, "--data-dir", dataDir,
		"--broker-mode", mode, "--broker-address", broker, "--force"}
	if pods != nil {
		args = append(args, pods.joinArgs()...)
		e.say("Joining %s with a one-time token (edgecore join --containerd: %s)", node, pods.describe())
	} else {
		e.say("Joining %s with a one-time token (edgecore join)", node)
	}
	return e.sup.runOnce(ctx, "join-"+node, filepath.Join(e.o.BinDir, "edgecore"), args...)
}

func (e *env) startMosquitto(ctx context.Context, node, dataDir, addr string) error {
	bin, err := mosquittoPath()
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n", port, dataDir)
	if os.Geteuid() == 0 {
		conf += "user root\n" // otherwise mosquitto drops to its own user, who cannot write dataDir
	}
	path := filepath.Join(dataDir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	m, err := e.sup.start("mosquitto-"+node, bin, "-c", path)
	if err != nil {
		return err
	}
	return waitListening(ctx, m, addr, 30*time.Second)
}

// instructions tells the user what is running and what to try.
func (e *env) instructions() {
	w := e.out
	_, _ = fmt.Fprintf(w, "\nedgetwin dev is running. State: %s   Logs: %s\n\n", e.o.Dir, filepath.Join(e.o.Dir, "logs"))
	_, _ = fmt.Fprintf(w, "  cloudcore    CloudHub %s, metrics http://%s/metrics\n", e.hubURL, e.cloudcore)
	for _, ed := range e.edges {
		_, _ = fmt.Fprintf(w, "  %-12s edgecore metrics http://%s/metrics, broker %s, simulator http://%s/devices\n",
			ed.name, ed.metrics, ed.broker, ed.sim)
	}
	_, _ = fmt.Fprintf(w, "\nTry:\n\n    export KUBECONFIG=%s\n    kubectl get devices -w\n", e.kubeconfig)
	_, _ = fmt.Fprint(w, "    kubectl patch device lobby-thermostat --type=json "+
		`-p '[{"op":"replace","path":"/spec/properties/0/desired","value":"25"}]'`+"\n")
	_, _ = fmt.Fprint(w, "    kubectl get edgenodes\n    kubectl describe device lobby-thermostat\n\n")
	if e.pods != nil {
		e.podInstructions()
	}
	_, _ = fmt.Fprint(w, "Ctrl-C stops everything. Starting again resumes with the same data; --fresh starts over.\n\n")
}

// waitEstablished waits until the API server serves every CRD.
func (e *env) waitEstablished(ctx context.Context, crds []*apiextensionsv1.CustomResourceDefinition) error {
	deadline := time.Now().Add(time.Minute)
	for _, c := range crds {
		for {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := e.client.Get(ctx, client.ObjectKeyFromObject(c), got); err == nil && established(got) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s was not established within a minute", c.Name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// mosquittoPath finds Debian's mosquitto.
func mosquittoPath() (string, error) {
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("--mosquitto needs mosquitto: apt-get install -y mosquitto")
}

// decidePods decides whether PodsNode runs pods and says so; see preparePods.
func (e *env) decidePods(ctx context.Context) {
	pods, reason := e.preparePods(ctx)
	if pods == nil {
		e.say("No pods on the edge nodes: %s; they serve devices only", reason)
		return
	}
	e.pods = pods
	e.say("%s will run pods: %s (in %s)", PodsNode, pods.describe(), containerdDir(pods.dataDir))
}

// stopPods stops PodsNode's containers and removes its containerd once edgecore has stopped
// (edgecore leaves them running, for its own restarts); the pods run again on the next start,
// from edgecore's store.
func (e *env) stopPods() {
	if e.pods == nil {
		return
	}
	e.say("Stopping %s's containers and removing its containerd", PodsNode)
	if err := purge(e.pods.containerdConfig()); err != nil {
		e.say("Cleaning up %s's containerd: %v", PodsNode, err)
	}
	e.pods.release()
}

// podInstructions tells the user how to run workloads on PodsNode.
func (e *env) podInstructions() {
	w := e.out
	_, _ = fmt.Fprintf(w, "%s runs pods (%s). The sample Deployment hello-edge runs there:\n\n", PodsNode, e.pods.describe())
	_, _ = fmt.Fprint(w, "    kubectl get nodes\n    kubectl get pods -o wide\n    kubectl scale deployment hello-edge --replicas=3\n")
	_, _ = fmt.Fprintf(w, "    ls %s    # the containers' logs ('kubectl logs' is not supported yet)\n\n",
		filepath.Join(e.pods.dataDir, "edged", "logs", "pods"))
	_, _ = fmt.Fprintf(w, "Your own Deployments run there with nodeSelector kubernetes.io/hostname: %s, a toleration of the\n"+
		"node-role.kubernetes.io/edge:NoSchedule taint and image edgetwin.dev/workload:1 (imagePullPolicy: IfNotPresent);\n"+
		"see config/samples/workloads/.\n\n", PodsNode)
}

// notJoined is joinNeeded's answer for a node that never joined.
const notJoined = "has not joined"

// joinNeeded says why the node in dataDir must join (again): it never did, or its config does
// not run pods the way pods says (containerd became available or went away, or it had another
// network). "" means its config is as wanted and the node resumes.
func joinNeeded(dataDir string, pods *podRuntime) string {
	if _, err := os.Stat(filepath.Join(dataDir, config.FileName)); err != nil {
		return notJoined
	}
	stored, err := config.Load(dataDir)
	switch {
	case err != nil:
		return "has an unreadable config (" + firstLine(err.Error()) + ")"
	case !reflect.DeepEqual(stored.Edged, pods.edged()):
		return fmt.Sprintf("ran pods differently on an earlier run (%s)", describeEdged(stored.Edged))
	}
	return ""
}

// describeEdged says how a stored config runs pods, for people.
func describeEdged(e *config.Edged) string {
	switch {
	case !e.Enabled():
		return "no pods"
	case e.RuntimeEndpoint != "":
		return "on " + e.RuntimeEndpoint
	default:
		return fmt.Sprintf("own containerd, bridge %s, pod IPs from %s", e.Containerd.Bridge, e.Containerd.PodSubnet)
	}
}
