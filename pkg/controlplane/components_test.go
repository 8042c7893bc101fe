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

package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitTimeout bounds every wait on the control plane's controllers; they act within seconds,
// the margin is for a loaded machine.
const waitTimeout = 2 * time.Minute

// eventually polls cond until it returns true, failing the test after waitTimeout with what it
// waited for and cond's last description of the world.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last seen: %s", waitTimeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logComponentsOnFailure prints the components' logs in dir if the test failed.
func logComponentsOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, name := range []string{controllerManagerName, schedulerName} {
			t.Logf("the end of %s.log:\n%s", name, tail(filepath.Join(dir, name+".log")))
		}
	})
}

// startNode creates a Node as a kubelet would: the object, then a Ready condition and capacity
// through the status subresource.
func startNode(ctx context.Context, t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	// The controller manager writes the new node too (taints, annotations): retry on a conflict.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status = corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
		}
		return c.Status().Update(ctx, node)
	})
	if err != nil {
		t.Fatalf("writing node %s's status: %v", name, err)
	}
}

// mountsToken reports whether the pod has a projected service account token volume.
func mountsToken(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.Projected == nil || !strings.HasPrefix(v.Name, "kube-api-access-") {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return true
			}
		}
	}
	return false
}

// podOf finds a pod in ns owned by an object of ownerKind and bound to node, and describes the
// pods it saw otherwise.
func podOf(ctx context.Context, c client.Client, ns, ownerKind, node string) (bool, string) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil {
		return false, err.Error()
	}
	var seen []string
	for _, p := range pods.Items {
		owned := false
		for _, ref := range p.OwnerReferences {
			owned = owned || ref.Kind == ownerKind
		}
		if owned && p.Spec.NodeName == node {
			return true, ""
		}
		scheduled := ""
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled {
				scheduled = fmt.Sprintf(" PodScheduled=%s %s", cond.Status, cond.Message)
			}
		}
		seen = append(seen, fmt.Sprintf("%s (owners %v, node %q%s)", p.Name, p.OwnerReferences, p.Spec.NodeName, scheduled))
	}
	return false, fmt.Sprintf("pods in %s: %v", ns, seen)
}

// TestSchedulerAndControllerManagerRunWorkloads: with both components, a Deployment and a
// DaemonSet get pods bound to a node, and a new namespace gets what a real cluster gives it.
func TestSchedulerAndControllerManagerRunWorkloads(t *testing.T) {
	logs := t.TempDir()
	cp, err := StartWith(Options{Scheduler: true, ControllerManager: true, LogDir: logs,
		// The test's node sends no heartbeats; it must stay Ready however slow the machine is.
		NodeMonitorGracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	logComponentsOnFailure(t, logs)
	ctx := context.Background()
	c, err := cp.Client()
	if err != nil {
		t.Fatal(err)
	}

	const node, ns = "edge-workloads", "workloads"
	selector := map[string]string{"edgetwin.dev/test": "workloads"}
	startNode(ctx, t, c, node, map[string]string{"kubernetes.io/hostname": node, "edgetwin.dev/test": "workloads"})
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	podSpec := corev1.PodSpec{NodeSelector: selector,
		Containers: []corev1.Container{{Name: "app", Image: "edgetwin-test-workload:1"}}}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec},
		},
	}
	if err := c.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Deployment's pod (made by the ReplicaSet controller) bound to "+node, func() (bool, string) {
		return podOf(ctx, c, ns, "ReplicaSet", node)
	})
	// The ServiceAccount admission plugin is on, as in a real cluster: the pod mounts a token.
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if p := pods.Items[0]; p.Spec.ServiceAccountName != "default" || !mountsToken(&p) {
		t.Errorf("pod %s: serviceAccountName %q, volumes %v; want the default account and a projected kube-api-access volume",
			p.Name, p.Spec.ServiceAccountName, p.Spec.Volumes)
	}

	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}}, Spec: podSpec},
		},
	}
	if err := c.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the DaemonSet's pod bound to "+node, func() (bool, string) {
		return podOf(ctx, c, ns, "DaemonSet", node)
	})

	eventually(t, "the default ServiceAccount in namespace "+ns, func() (bool, string) {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, "the kube-root-ca.crt ConfigMap with the API server's CA in namespace "+ns, func() (bool, string) {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kube-root-ca.crt"}, cm); err != nil {
			return false, err.Error()
		}
		return cm.Data["ca.crt"] == string(cp.Config.CAData), "ca.crt is not the API server's serving CA:\n" + cm.Data["ca.crt"]
	})

	// The token controller signs with the key the API server verifies with: its token works.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type: corev1.SecretTypeServiceAccountToken,
	}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the token controller to fill "+secret.Name, func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
			return false, err.Error()
		}
		return len(secret.Data[corev1.ServiceAccountTokenKey]) > 0, fmt.Sprintf("data keys %v", keys(secret.Data))
	})
	asSA, err := kubernetes.NewForConfig(&rest.Config{Host: cp.Config.Host,
		BearerToken:     string(secret.Data[corev1.ServiceAccountTokenKey]),
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.Config.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	review, err := asSA.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the API server refused the token the token controller made: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":default"; review.Status.UserInfo.Username != want {
		t.Fatalf("the token authenticates as %q, want %q", review.Status.UserInfo.Username, want)
	}

	if got := nodeMonitorGracePeriodOf(t, cp); got != "1h0m0s" {
		t.Fatalf("kube-controller-manager runs with a node monitor grace period of %q, want the 1h0m0s asked for", got)
	}

	// A component that dies is reported with its log.
	sched := cp.components[len(cp.components)-1]
	if sched.name != schedulerName {
		t.Fatalf("the last component started is %s, want %s", sched.name, schedulerName)
	}
	if err := sched.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cp.Exited():
		if !strings.Contains(err.Error(), "kube-scheduler exited") || !strings.Contains(err.Error(), sched.log) {
			t.Fatalf("Exited() = %v, want kube-scheduler's exit with its log", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Exited() said nothing within %s of killing kube-scheduler", waitTimeout)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// nodeMonitorGracePeriodOf reads the setting kube-controller-manager runs with from its
// /configz, as the admin user (authenticated by client certificate, authorised by the API
// server).
func nodeMonitorGracePeriodOf(t *testing.T, cp *ControlPlane) string {
	t.Helper()
	var kcm *component
	for _, c := range cp.components {
		if c.name == controllerManagerName {
			kcm = c
		}
	}
	if kcm == nil {
		t.Fatal("no kube-controller-manager running")
	}
	cert, err := tls.X509KeyPair(cp.Config.CertData, cp.Config.KeyData)
	if err != nil {
		t.Fatalf("the admin client certificate: %v", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}}} //nolint:gosec // its self-signed loopback certificate
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/configz", kcm.port))
	if err != nil {
		t.Fatalf("reading kube-controller-manager's /configz: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kube-controller-manager's /configz answered %s: %s", resp.Status, body)
	}
	var configz struct {
		Config struct {
			NodeLifecycleController struct {
				NodeMonitorGracePeriod string
			}
		} `json:"kubecontrollermanager.config.k8s.io"`
	}
	if err := json.Unmarshal(body, &configz); err != nil || configz.Config.NodeLifecycleController.NodeMonitorGracePeriod == "" {
		t.Fatalf("no node monitor grace period in kube-controller-manager's /configz (%v):\n%s", err, body)
	}
	return configz.Config.NodeLifecycleController.NodeMonitorGracePeriod
}

// assetsWith makes an assets directory holding the real API server and etcd and the given
// stand-ins.
func assetsWith(t *testing.T, standIns map[string]string) string {
	t.Helper()
	built := AssetsDir()
	dir := t.TempDir()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := os.Symlink(filepath.Join(built, bin), filepath.Join(dir, bin)); err != nil {
			t.Fatal(err)
		}
	}
	for name, script := range standIns {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAComponentThatDiesDuringStartIsAnErrorWithItsLog: StartWith fails, quoting the log, and
// leaves nothing running.
func TestAComponentThatDiesDuringStartIsAnErrorWithItsLog(t *testing.T) {
	dir := assetsWith(t, map[string]string{
		schedulerName: "#!/bin/sh\necho 'E0101 invalid configuration: no way to schedule' >&2\nexit 1\n",
	})
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	logs := t.TempDir()
	cp, err := StartWith(Options{Scheduler: true, LogDir: logs})
	if err == nil {
		_ = cp.Stop()
		t.Fatal("StartWith succeeded with a kube-scheduler that exits at once")
	}
	for _, want := range []string{"kube-scheduler exited: exit status 1", "no way to schedule", filepath.Join(logs, "kube-scheduler.log")} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("StartWith() error = %v\nwant it to contain %q", err, want)
		}
	}
}

func TestOptionsAskingForAMissingComponentSayHowToBuildIt(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", assetsWith(t, nil))
	cp, err := StartWith(Options{ControllerManager: true})
	if err == nil {
		_ = cp.Stop()
		t.Fatal("StartWith succeeded without kube-controller-manager")
	}
	if !errors.Is(err, ErrAssetsMissing) || !strings.Contains(err.Error(), "kube-controller-manager is not in") ||
		!strings.Contains(err.Error(), "make control-plane") {
		t.Fatalf("StartWith() error = %v, want ErrAssetsMissing naming kube-controller-manager and 'make control-plane'", err)
	}
}

func TestNodeMonitorGracePeriod(t *testing.T) {
	tests := []struct {
		name    string
		set     time.Duration
		want    time.Duration
		invalid bool
	}{
		{"zero keeps Kubernetes' default", 0, DefaultNodeMonitorGracePeriod, false},
		{"a longer one is used as given", 10 * time.Minute, 10 * time.Minute, false},
		{"one no longer than the monitor period is refused", NodeMonitorPeriod, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{NodeMonitorGracePeriod: tt.set}
			err := o.validate()
			if tt.invalid {
				if err == nil {
					t.Fatalf("validate() accepted %s", tt.set)
				}
				return
			}
			if err != nil {
				t.Fatalf("validate() = %v", err)
			}
			if got := o.nodeMonitorGracePeriod(); got != tt.want {
				t.Fatalf("nodeMonitorGracePeriod() = %s, want %s", got, tt.want)
			}
		})
	}
}
