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
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/edgetwin/edgetwin/cloud/pki"
)

// helm returns the helm binary: $EDGETWIN_HELM (hack/packaging.mk sets it), else helm on PATH.
func helm(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("EDGETWIN_HELM"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("EDGETWIN_HELM=%s: %v; build it with 'make helm'", bin, err)
		}
		return bin
	}
	bin, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm is needed: run the tests with 'make test' (which builds it), or build it with 'make helm' and set EDGETWIN_HELM")
	}
	return bin
}

// TestHelmLint runs 'helm lint --strict', and checks that the chart refuses what it does not
// support (a second replica) and a CA without its key.
func TestHelmLint(t *testing.T) {
	run(t, nil, helm(t), "lint", "--strict", "charts/edgetwin")
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"two replicas are refused", []string{"replicaCount=2"}, "replicaCount"},
		{"a CA certificate without its key is refused", []string{"ca.certificate=x"}, "ca.certificate and ca.key go together"},
		{"an unknown service type is refused", []string{"service.type=Ingress"}, "service/type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "edgetwin", "charts/edgetwin"}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			out, stderr, err := runErr(t, nil, helm(t), args...)
			if err == nil {
				t.Fatalf("helm template with %v succeeded:\n%s", tt.set, out)
			}
			if !strings.Contains(string(stderr), tt.want) {
				t.Errorf("helm's error does not mention %q:\n%s", tt.want, stderr)
			}
		})
	}
}

// TestHelmChartIsAccepted renders the chart with every setting a user is likely to change and
// applies it, CRDs included, with kubectl: every object is accepted, and the flags, the
// Service and the service account's permissions are what the values say.
func TestHelmChartIsAccepted(t *testing.T) {
	const ns = "edgetwin-helm"
	kubectl(t, nil, "create", "namespace", ns)
	caCert, caKey, caDER := testCA(t)
	manifest := run(t, nil, helm(t), "template", "edge", "charts/edgetwin", "--namespace", ns, "--include-crds",
		"--set", "image.repository=registry.example.org/edgetwin/cloudcore", "--set", "image.tag=v1.2.3",
		"--set", "service.type=NodePort", "--set", "service.nodePort=30350",
		"--set", "cloudhub.advertiseAddresses={cloudhub.example.org,192.0.2.10}",
		"--set", "statusWrites.interval=2s", "--set", "statusWrites.qps=20", "--set", "statusWrites.burst=40",
		"--set", "nodeSelector.node-role\\.kubernetes\\.io/control-plane=",
		"--set", "tolerations[0].key=node-role.kubernetes.io/control-plane", "--set", "tolerations[0].effect=NoSchedule",
		"--set", "resources.limits.memory=1Gi",
		"--set-file", "ca.certificate="+caCert, "--set-file", "ca.key="+caKey)
	out := string(kubectl(t, manifest, "apply", "--server-side", "--force-conflicts", "-f", "-"))
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/edgenodes.edgetwin.dev",
		"deployment.apps/edge-edgetwin-cloudcore serverside-applied",
		"service/edge-edgetwin-cloudhub serverside-applied",
		"service/edge-edgetwin-metrics serverside-applied",
		"secret/edgetwin-ca serverside-applied",
		"clusterrole.rbac.authorization.k8s.io/edge-edgetwin-manager serverside-applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply did not report %q:\n%s", want, out)
		}
	}

	// cloudcore loads the CA the values gave from the Secret the chart made.
	ca, err := pki.EnsureCA(context.Background(), cl.Client, ns, pki.DefaultCASecretName)
	if err != nil {
		t.Fatalf("cloudcore cannot load the CA Secret the chart made: %v", err)
	}
	if !bytes.Equal(ca.Certificate().Raw, caDER) {
		t.Error("the CA in the chart's Secret is not the one given in the values")
	}

	var deploy struct {
		Spec struct {
			Replicas int
			Template struct {
				Spec struct {
					NodeSelector map[string]string
					Tolerations  []map[string]string
					Containers   []struct {
						Image     string
						Args      []string
						Resources struct{ Limits map[string]string }
					}
				}
			}
		}
	}
	raw := kubectl(t, nil, "-n", ns, "get", "deployment", "edge-edgetwin-cloudcore", "-o", "json")
	if err := yaml.Unmarshal(raw, &deploy); err != nil {
		t.Fatal(err)
	}
	pod := deploy.Spec.Template.Spec
	if deploy.Spec.Replicas != 1 || len(pod.Containers) != 1 {
		t.Fatalf("replicas %d, containers %d: want 1 and 1", deploy.Spec.Replicas, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "registry.example.org/edgetwin/cloudcore:v1.2.3" {
		t.Errorf("image = %s", c.Image)
	}
	for _, want := range []string{
		"--advertise-address=edge-edgetwin-cloudhub.edgetwin-helm.svc,edge-edgetwin-cloudhub.edgetwin-helm.svc.cluster.local,cloudhub.example.org,192.0.2.10",
		"--namespace=edgetwin-helm", "--hub-bind-address=:10350", "--leader-elect=true",
		"--device-status-interval=2s", "--status-write-qps=20", "--status-write-burst=40",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("cloudcore's args lack %s: %v", want, c.Args)
		}
	}
	if c.Resources.Limits["memory"] != "1Gi" {
		t.Errorf("memory limit = %q, want 1Gi", c.Resources.Limits["memory"])
	}
	if _, ok := pod.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok {
		t.Errorf("nodeSelector = %v", pod.NodeSelector)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0]["key"] != "node-role.kubernetes.io/control-plane" {
		t.Errorf("tolerations = %v", pod.Tolerations)
	}
	nodePort := kubectl(t, nil, "-n", ns, "get", "service", "edge-edgetwin-cloudhub", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}")
	if string(nodePort) != "NodePort 30350" {
		t.Errorf("CloudHub's Service: %s, want NodePort 30350", nodePort)
	}

	sa := "system:serviceaccount:" + ns + ":edge-edgetwin-cloudcore"
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"update", "devices.edgetwin.dev", "--subresource=finalizers", "-n", "default"}, true},
		{[]string{"list", "edgenodes.edgetwin.dev"}, true},
		{[]string{"delete", "secrets", "-n", ns}, true},
		{[]string{"create", "leases.coordination.k8s.io", "-n", ns}, true},
		// Secrets elsewhere: read (for edge Pods), never written.
		{[]string{"get", "secrets", "-n", "edgetwin-system"}, true},
		{[]string{"delete", "secrets", "-n", "edgetwin-system"}, false},
		{[]string{"patch", "pods", "--subresource=status", "-n", "default"}, true},
	} {
		if got := canI(t, sa, tt.want, tt.args...); got != tt.want {
			t.Errorf("can cloudcore %v? %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestHelmChartCopiesTheGeneratedFiles: the chart's CRDs and RBAC are the generated ones, byte
// for byte ('make chart' copies them; 'make verify-gen' checks the commit).
func TestHelmChartCopiesTheGeneratedFiles(t *testing.T) {
	crds, err := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no generated CRDs: %v", err)
	}
	copies, _ := filepath.Glob(filepath.Join(root, "charts/edgetwin/crds/*.yaml"))
	if len(copies) != len(crds) {
		t.Errorf("the chart has %d CRDs, config/crd/bases %d", len(copies), len(crds))
	}
	pairs := map[string]string{}
	for _, p := range crds {
		pairs[p] = filepath.Join(root, "charts/edgetwin/crds", filepath.Base(p))
	}
	for _, f := range []string{"role.yaml", "leader_election_role.yaml", "metrics_auth_role.yaml", "metrics_reader_role.yaml"} {
		pairs[filepath.Join(root, "config/rbac", f)] = filepath.Join(root, "charts/edgetwin/files", f)
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%v (run 'make chart')", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run 'make chart'", dst, src)
		}
	}

	// And the rendered ClusterRole grants exactly the generated rules.
	manifest := run(t, nil, helm(t), "template", "edgetwin", "charts/edgetwin", "--namespace", "edgetwin-system")
	objs := decodeObjects(t, manifest)
	generated := decodeObjects(t, mustRead(t, filepath.Join(root, "config/rbac/role.yaml")))
	for _, kind := range []string{"ClusterRole", "Role"} {
		want := rulesOf(t, find(t, generated, kind, "manager-role"))
		got := rulesOf(t, find(t, objs, kind, "edgetwin-manager"))
		if !equalRules(got, want) {
			t.Errorf("the chart's %s grants %v, the generated one %v", kind, got, want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}
