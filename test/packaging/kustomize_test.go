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
	"strings"
	"testing"
)

// TestKustomizeInstallIsAccepted renders config/default as 'make build-installer' does and
// applies it with kubectl: every object is accepted, and the service account gets what
// cloudcore needs (checked by the API server's authorizer).
func TestKustomizeInstallIsAccepted(t *testing.T) {
	manifest := kubectl(t, nil, "kustomize", "config/default")
	out := string(kubectl(t, manifest, "apply", "--server-side", "--force-conflicts", "-f", "-"))
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/devices.edgetwin.dev",
		"deployment.apps/edgetwin-controller-manager serverside-applied",
		"service/edgetwin-cloudhub serverside-applied",
		"service/edgetwin-controller-manager-metrics-service serverside-applied",
		"configmap/edgetwin-cloudhub serverside-applied",
		"clusterrole.rbac.authorization.k8s.io/edgetwin-manager-role serverside-applied",
		"role.rbac.authorization.k8s.io/edgetwin-manager-role serverside-applied",
		"role.rbac.authorization.k8s.io/edgetwin-leader-election-role serverside-applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply did not report %q:\n%s", want, out)
		}
	}
	args := kubectl(t, nil, "-n", "edgetwin-system", "get", "deployment", "edgetwin-controller-manager",
		"-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].args}")
	for _, want := range []string{"1 ", "--leader-elect", "--hub-bind-address=:10350", "--advertise-address=$(EDGETWIN_ADVERTISE_ADDRESSES)"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("the Deployment's replicas and args %s lack %q", args, want)
		}
	}
	port := kubectl(t, nil, "-n", "edgetwin-system", "get", "service", "edgetwin-cloudhub", "-o", "jsonpath={.spec.ports[0].port}")
	if string(port) != "10350" {
		t.Errorf("CloudHub's Service port = %s, want 10350", port)
	}

	sa := "system:serviceaccount:edgetwin-system:edgetwin-controller-manager"
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"patch", "devices.edgetwin.dev", "--subresource=status", "-n", "default"}, true},
		{[]string{"watch", "edgenodes.edgetwin.dev"}, true},
		{[]string{"create", "secrets", "-n", "edgetwin-system"}, true},
		{[]string{"update", "leases.coordination.k8s.io", "-n", "edgetwin-system"}, true},
		{[]string{"create", "tokenreviews.authentication.k8s.io"}, true},
		// It reads Secrets anywhere, to send those an edge node's Pods use to that node (a
		// kubelet's job), but writes only its own CA and token Secrets.
		{[]string{"get", "secrets", "-n", "default"}, true},
		{[]string{"create", "secrets", "-n", "default"}, false},
		{[]string{"update", "secrets", "-n", "default"}, false},
		{[]string{"delete", "secrets", "-n", "default"}, false},
		// Edge nodes' Nodes, their status and Leases, Pod status, and Pods it finishes deleting.
		{[]string{"create", "nodes"}, true},
		{[]string{"patch", "nodes", "--subresource=status"}, true},
		{[]string{"update", "leases.coordination.k8s.io", "-n", "kube-node-lease"}, true},
		{[]string{"patch", "pods", "--subresource=status", "-n", "default"}, true},
		{[]string{"delete", "pods", "-n", "default"}, true},
		{[]string{"create", "pods", "-n", "default"}, false},
		{[]string{"delete", "nodes"}, false},
		{[]string{"delete", "edgenodes.edgetwin.dev"}, false},
	} {
		if got := canI(t, sa, tt.want, tt.args...); got != tt.want {
			t.Errorf("can cloudcore %v? %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestDeployOverlay checks the overlay 'make deploy' applies: the image and the advertised
// addresses are set, and the result is accepted (a server-side dry run).
func TestDeployOverlay(t *testing.T) {
	dir := t.TempDir()
	run(t, nil, "hack/deploy-overlay.sh", dir, "registry.example.org:5000/edge/cloudcore:v9.8.7", "cloudhub.example.org,192.0.2.10")
	manifest := string(kubectl(t, nil, "kustomize", dir))
	for _, want := range []string{
		"image: registry.example.org:5000/edge/cloudcore:v9.8.7",
		"advertise-addresses: cloudhub.example.org,192.0.2.10",
	} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the overlay's output lacks %q", want)
		}
	}
	kubectl(t, []byte(manifest), "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")

	if _, _, err := runErr(t, nil, "hack/deploy-overlay.sh", t.TempDir(), "edgetwin/cloudcore:v1", "a.example.org, b.example.org"); err == nil {
		t.Error("an address list with a space was accepted")
	}
}
