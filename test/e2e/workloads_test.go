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
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/pkg/containerd"
	"github.com/edgetwin/edgetwin/pkg/containerd/containerdtest"
	"github.com/edgetwin/edgetwin/test/harness"
)

const podNode = "edge-pods" // the node that runs Pods in this story

// podSite is an edge node with Edged backed by its own containerd, and the cloud it talks to.
type podSite struct {
	root    *testing.T
	t       *testing.T
	cloud   *harness.Cloudcore
	hubPort int
	edge    *harness.Proc
	dataDir string
	metrics string
	runtime string // containerd's directory
	images  string // where hack/build-test-images.sh put the tarballs
	rs      internalapi.RuntimeService
}

func (s *podSite) startEdge() {
	s.edge = cl.Start(s.root, "edgecore", "run", "--data-dir", s.dataDir, "--metrics-bind-address", s.metrics)
}

func (s *podSite) kubectl(args ...string) string {
	s.t.Helper()
	out, err := cl.KubectlErr(s.t, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *podSite) get(kind, name, path string) string {
	out, err := cl.KubectlErr(s.t, "get", kind, name, "-n", "default", "-o", "jsonpath="+path)
	if err != nil {
		return ""
	}
	return out
}

// apply applies a manifest given as text.
func (s *podSite) apply(manifest string) {
	s.t.Helper()
	// Not under t.TempDir(): kubectl splits -f at commas, and step names have them.
	f, err := os.CreateTemp("", "manifest-*.yaml")
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString(manifest); err != nil {
		s.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.kubectl("apply", "-f", f.Name())
}

// podRow is the row of 'kubectl get pods -o wide' for the pod whose name starts with prefix.
func (s *podSite) podRow(prefix string) []string {
	out, err := cl.KubectlErr(s.t, "get", "pods", "-n", "default", "-o", "wide")
	if err != nil {
		return nil
	}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			return f
		}
	}
	return nil
}

// runtimeService is a CRI client to the edge's containerd, to see sandboxes as the edge does;
// nil while containerd does not answer (edgecore restarting).
func (s *podSite) runtimeService() internalapi.RuntimeService {
	if s.rs != nil {
		return s.rs // gRPC reconnects by itself across containerd restarts
	}
	rs, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + filepath.Join(s.runtime, "containerd.sock")).
		WithConnectionTimeout(10 * time.Second).Build(context.Background())
	if err != nil {
		return nil
	}
	s.rs = rs
	return rs
}

// readySandboxes lists the IDs of the READY sandboxes of the pod with uid.
func (s *podSite) readySandboxes(uid string) []string {
	rs := s.runtimeService()
	if rs == nil {
		return nil
	}
	boxes, err := rs.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid},
	})
	if err != nil {
		return nil
	}
	var ids []string
	for _, b := range boxes {
		ids = append(ids, b.Id)
	}
	return ids
}

// logOf reads a container's log at the edge (Edged writes CRI logs; kubectl logs needs a
// kubelet endpoint edgetwin does not serve yet).
func (s *podSite) logOf(uid, name, container string, restart int) string {
	raw, _ := os.ReadFile(filepath.Join(s.dataDir, "edged", "logs", "pods",
		fmt.Sprintf("default_%s_%s", name, uid), container, strconv.Itoa(restart)+".log"))
	return string(raw)
}

// TestWorkloadsEndToEnd is running Pods on an edge node as a user sees it.
func TestWorkloadsEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatal("containerd is not installed: make test-e2e installs containerd, runc and containernetworking-plugins (apt-get)")
	}
	dumpWorkloadsOnFailure(t)
	s := startPodSite(t)

	step2(t, s, "the edge node is a Ready Node with the edge role", s.nodeIsReady)

	step2(t, s, "a Deployment pinned to the edge node runs there", s.deploymentRuns)

	step2(t, s, "a container that exits non-zero restarts with back-off", s.crashLoops)

	step2(t, s, "deleting the Deployment stops its container", s.deleteStops)

	step2(t, s, "after a reboot with the cloud unreachable, the pod runs again from the edge's store", s.rebootOffline)

	step2(t, s, "a link outage does not evict the edge's Pods", s.outageDoesNotEvict)
}

// nodeIsReady: the edge node is a Ready Node with the edge role.
func (s *podSite) nodeIsReady(t *testing.T) {
	harness.WaitFor(t, "kubectl get nodes to show "+podNode+" Ready", func() bool {
		out, err := cl.KubectlErr(t, "get", "nodes")
		if err != nil {
			return false
		}
		for line := range strings.SplitSeq(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == podNode && f[1] == "Ready" && f[2] == "edge" {
				return true
			}
		}
		return false
	})
	// Ready follows the link; the capacity comes with Edged's first NodeStatus report (Edged
	// starts in the background, once its runtime is up).
	harness.WaitFor(t, "the Node's allocatable pods to be the 110 Edged reports", func() bool {
		return s.get("node", podNode, "{.status.allocatable.pods}") == "110"
	})
	t.Logf("kubectl get nodes -o wide:\n%s", s.kubectl("get", "nodes", "-o", "wide"))
}

// deploymentRuns: a Deployment pinned to the edge node runs there.
func (s *podSite) deploymentRuns(t *testing.T) {
	s.apply(deployment("hello", "--read=/var/run/secrets/kubernetes.io/serviceaccount/namespace"))
	var row []string
	harness.WaitFor(t, "kubectl get pods -o wide to show the pod Running on "+podNode, func() bool {
		row = s.podRow("hello-")
		return len(row) >= 7 && row[2] == "Running" && row[6] == podNode
	})
	pod := row[0]
	uid := s.get("pod", pod, "{.metadata.uid}")
	harness.WaitFor(t, "the workload's log at the edge", func() bool {
		return strings.Contains(s.logOf(uid, pod, "app", 0), `"workload: `) ||
			strings.Contains(s.logOf(uid, pod, "app", 0), "workload: ")
	})
	log := s.logOf(uid, pod, "app", 0)
	// The kube-api-access volume works: the namespace file is there.
	if !strings.Contains(log, `"/var/run/secrets/kubernetes.io/serviceaccount/namespace":"default"`) {
		t.Fatalf("the workload's log lacks the service account namespace file:\n%s", log)
	}
	if ip := s.get("pod", pod, "{.status.podIP}"); !strings.HasPrefix(ip, "10.231.0.") {
		t.Fatalf("pod IP %q, want one from the node's bridge subnet", ip)
	}
	if secs := s.get("pod", pod, `{.spec.tolerations[?(@.key=="node.kubernetes.io/unreachable")].tolerationSeconds}`); secs != "" {
		t.Fatalf("the edge pod tolerates unreachable for %s s; the autonomy policy should have made it forever", secs)
	}
	t.Logf("kubectl get pods -o wide:\n%s", s.kubectl("get", "pods", "-n", "default", "-o", "wide"))
	t.Logf("the workload's log at the edge:\n%s", log)
}

// crashLoops: a container that exits non-zero restarts with back-off.
func (s *podSite) crashLoops(t *testing.T) {
	s.apply(deployment("crasher", "--exit=3", "--sleep=1s"))
	harness.WaitFor(t, "the crasher to restart twice and be in CrashLoopBackOff", func() bool {
		row := s.podRow("crasher-")
		if len(row) < 4 {
			return false
		}
		restarts, _ := strconv.Atoi(row[3])
		return restarts >= 2 && row[2] == "CrashLoopBackOff"
	})
	pod := s.podRow("crasher-")[0]
	if code := s.get("pod", pod, "{.status.containerStatuses[0].lastState.terminated.exitCode}"); code != "3" {
		t.Fatalf("lastState exit code %q, want 3", code)
	}
	t.Logf("kubectl get pods -o wide:\n%s", s.kubectl("get", "pods", "-n", "default", "-o", "wide"))
	s.kubectl("delete", "deployment", "crasher", "-n", "default")
}

// deleteStops: deleting the Deployment stops its container.
func (s *podSite) deleteStops(t *testing.T) {
	pod := s.podRow("hello-")[0]
	uid := s.get("pod", pod, "{.metadata.uid}")
	if len(s.readySandboxes(uid)) != 1 {
		t.Fatalf("pod %s has sandboxes %v before the delete, want one", pod, s.readySandboxes(uid))
	}
	s.kubectl("delete", "deployment", "hello", "-n", "default")
	harness.WaitFor(t, "the pod to be gone from the API", func() bool {
		_, err := cl.KubectlErr(t, "get", "pod", pod, "-n", "default")
		return err != nil
	})
	harness.WaitFor(t, "the pod's sandbox and containers to be gone at the edge", func() bool {
		return len(s.readySandboxes(uid)) == 0 && s.runningContainers(uid) == 0
	})
}

// rebootOffline: after a reboot with the cloud unreachable, the pod runs again from the edge's store.
func (s *podSite) rebootOffline(t *testing.T) {
	s.apply(deployment("survivor"))
	var pod, uid string
	harness.WaitFor(t, "the survivor to run", func() bool {
		row := s.podRow("survivor-")
		if len(row) >= 3 && row[2] == "Running" {
			pod, uid = row[0], s.get("pod", row[0], "{.metadata.uid}")
			return len(s.readySandboxes(uid)) == 1
		}
		return false
	})
	before := s.readySandboxes(uid)[0]

	s.cloud.Stop(t)
	// The reboot: edgecore (and the containerd it runs) stops, every shim and container
	// dies, containerd's state directory is lost.
	s.edge.Stop(t)
	if err := containerd.KillShims(filepath.Join(s.runtime, "containerd.sock")); err != nil {
		t.Fatal(err)
	}
	if err := containerd.RemoveState(filepath.Join(s.runtime, "state")); err != nil {
		t.Fatal(err)
	}
	s.startEdge() // the cloud is still down
	harness.WaitFor(t, "a new sandbox running the pod, with no cloud", func() bool {
		ids := s.readySandboxes(uid)
		return len(ids) == 1 && ids[0] != before && s.runningContainers(uid) == 1
	})
	if harness.Metric(s.metrics, "edgetwin_edgehub_connected") != 0 {
		t.Fatal("edgecore says it is connected while cloudcore is down")
	}

	s.cloud = cl.StartCloudcore(s.root, s.hubPort)
	harness.WaitFor(t, "the same pod to be Running again in the API", func() bool {
		return s.get("pod", pod, "{.metadata.uid}") == uid && s.get("pod", pod, "{.status.phase}") == "Running" &&
			s.get("pod", pod, "{.status.containerStatuses[0].restartCount}") != "0"
	})
	t.Logf("kubectl get pods -o wide after the reboot:\n%s", s.kubectl("get", "pods", "-n", "default", "-o", "wide"))
}

// outageDoesNotEvict: a link outage does not evict the edge's Pods.
func (s *podSite) outageDoesNotEvict(t *testing.T) {
	// kube-controller-manager evicts nothing in a zone where no node is Ready (it takes that
	// for its own connectivity problem): a healthy ordinary node, as any real cluster has,
	// keeps the zone Normal.
	keepNodeReady(t, "worker-1")
	// The control group: a Pod whose author chose a 5 s toleration of the outage taints,
	// which the autonomy policy keeps. It must be evicted, proving eviction is at work.
	s.apply(strings.Replace(deployment("evictable"), "        effect: NoSchedule\n",
		"        effect: NoSchedule\n      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}\n"+
			"      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}\n", 1))
	var evictable string
	harness.WaitFor(t, "the evictable pod to run", func() bool {
		row := s.podRow("evictable-")
		if len(row) >= 3 && row[2] == "Running" {
			evictable = row[0]
			return true
		}
		return false
	})
	survivor := s.podRow("survivor-")[0]
	uid := s.get("pod", survivor, "{.metadata.uid}")
	restarts := s.get("pod", survivor, "{.status.containerStatuses[0].restartCount}")

	s.edge.Stop(t) // the link drops; the containers keep running in their shims
	harness.WaitFor(t, "the Node to be Unknown and tainted unreachable:NoExecute", func() bool {
		return s.get("node", podNode, `{.status.conditions[?(@.type=="Ready")].status}`) == "Unknown" &&
			strings.Contains(s.get("node", podNode, "{.spec.taints}"), `"key":"node.kubernetes.io/unreachable"`)
	})
	// Evicted: being deleted (it goes once the node is back and has stopped it, as a
	// kubelet node's Pod would).
	harness.WaitFor(t, "the evictable pod to be evicted", func() bool {
		return s.get("pod", evictable, "{.metadata.deletionTimestamp}") != ""
	})
	if got := s.get("pod", survivor, "{.metadata.uid}"); got != uid {
		t.Fatalf("the survivor pod is gone (uid now %q) after an outage", got)
	}
	if ts := s.get("pod", survivor, "{.metadata.deletionTimestamp}"); ts != "" {
		t.Fatalf("the survivor pod is being deleted (%s) after an outage", ts)
	}
	s.kubectl("delete", "deployment", "evictable", "-n", "default")

	s.startEdge()
	harness.WaitFor(t, "the evicted pod to go once the node is back", func() bool {
		_, err := cl.KubectlErr(t, "get", "pod", evictable, "-n", "default")
		return err != nil
	})
	harness.WaitFor(t, "the Node Ready again with the same survivor pod running, never restarted", func() bool {
		return s.get("node", podNode, `{.status.conditions[?(@.type=="Ready")].status}`) == "True" &&
			s.get("pod", survivor, "{.metadata.uid}") == uid && s.get("pod", survivor, "{.status.phase}") == "Running" &&
			s.get("pod", survivor, "{.status.containerStatuses[0].restartCount}") == restarts && s.runningContainers(uid) == 1
	})
	t.Logf("kubectl get pods -o wide after the outage:\n%s", s.kubectl("get", "pods", "-n", "default", "-o", "wide"))
}

// runningContainers counts the running containers (not sandboxes) of the pod with uid.
func (s *podSite) runningContainers(uid string) int {
	rs := s.runtimeService()
	if rs == nil {
		return -1
	}
	cs, err := rs.ListContainers(context.Background(), &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid},
	})
	if err != nil {
		return -1
	}
	return len(cs)
}

// deployment is a one-replica Deployment of the workload image pinned to the edge node.
func deployment(name string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      nodeSelector:
        kubernetes.io/hostname: %[2]s
      tolerations:
      - key: node-role.kubernetes.io/edge
        operator: Exists
        effect: NoSchedule
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: edgetwin.dev/workload:1
        imagePullPolicy: IfNotPresent
        args: [%[3]s]
`, name, podNode, strings.Join(quoted, ", "))
}

// step2 is step for a podSite.
func step2(t *testing.T, s *podSite, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, func(t *testing.T) { s.t = t; f(t) }) {
		t.FailNow()
	}
	s.t = t
}

// cleanUpRuntime leaves the machine as the test found it: the shims and containers of the
// edge's containerd killed, its mounts undone, the network namespaces its pods made removed.
func cleanUpRuntime(t *testing.T, dir string) {
	netnsBefore := netnsList()
	t.Cleanup(func() {
		_ = containerd.KillShims(filepath.Join(dir, "containerd.sock"))
		if err := containerd.RemoveState(dir); err != nil {
			t.Logf("cleaning up %s: %v", dir, err)
		}
		for ns := range netnsList() {
			if !netnsBefore[ns] {
				_ = exec.Command("ip", "netns", "delete", ns).Run()
			}
		}
		_ = exec.Command("ip", "link", "delete", "e2epods0").Run()
	})
}

func netnsList() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

func dumpWorkloadsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out, _ := cl.KubectlErr(t, "get", "nodes,pods,deployments,edgenodes", "-A", "-o", "yaml")
		t.Logf("kubectl get nodes,pods,deployments,edgenodes -A -o yaml:\n%s", out)
	})
}

// startPodSite starts cloudcore, joins the edge node with a token and starts edgecore with Edged
// on its own containerd, on a bridge and subnet of this test's own.
func startPodSite(t *testing.T) *podSite {
	images := containerdtest.Images(t) // hack/build-test-images.sh, cached
	s := &podSite{root: t, t: t, hubPort: harness.FreePort(t), dataDir: t.TempDir(), metrics: harness.LoopbackAddr(t), images: images}
	s.runtime = filepath.Join(s.dataDir, "containerd")
	cleanUpRuntime(t, s.runtime)
	s.cloud = cl.StartCloudcore(t, s.hubPort)

	s.apply("apiVersion: edgetwin.dev/v1alpha1\nkind: EdgeNode\nmetadata:\n  name: " + podNode + "\nspec: {}\n")
	tokenOut, code := cl.Run(t, "edgetwin", "token", "create", podNode, "--kubeconfig", cl.Kubeconfig,
		"--namespace", harness.SystemNamespace, "--server", s.cloud.ServerURL())
	if code != 0 {
		t.Fatalf("edgetwin token create exited %d:\n%s", code, tokenOut)
	}
	if out, code := cl.Run(t, "edgecore", "join", "--server", s.cloud.ServerURL(), "--token", tokenFrom(t, tokenOut),
		"--name", podNode, "--data-dir", s.dataDir); code != 0 {
		t.Fatalf("edgecore join exited %d:\n%s", code, out)
	}
	// Edged with edgecore's own containerd, on a bridge and subnet of this test's own.
	f, err := os.OpenFile(filepath.Join(s.dataDir, "edgecore.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "edged:\n  containerd:\n    dir: %s\n    bridge: e2epods0\n    podSubnet: 10.231.0.0/24\n    images: [%s, %s]\n",
		s.runtime, filepath.Join(images, "pause.tar"), filepath.Join(images, "workload.tar"))
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err)
	}
	s.startEdge()
	return s
}

// keepNodeReady makes an ordinary Node that stays Ready for the rest of the test: a kubelet's
// status and a Lease renewed every few seconds.
func keepNodeReady(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cl.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: new(int32(40))}}
	renew := func() error {
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
				return err
			}
			now := metav1.Now()
			node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
			return cl.Client.Status().Update(ctx, node)
		}); err != nil {
			return err
		}
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if lease.ResourceVersion == "" {
			return cl.Client.Create(ctx, lease)
		}
		return cl.Client.Update(ctx, lease)
	}
	if err := renew(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(lease), lease); err == nil {
					lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
					_ = cl.Client.Update(ctx, lease)
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cl.Client.Delete(context.Background(), node)
	})
}
