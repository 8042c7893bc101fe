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
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// csv is the part of a ClusterServiceVersion the bundle's checks read.
type csv struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Version                   string `json:"version"`
		DisplayName               string `json:"displayName"`
		Description               string `json:"description"`
		CustomResourceDefinitions struct {
			Owned []struct {
				Name, Version, Kind, DisplayName, Description string
			} `json:"owned"`
		} `json:"customresourcedefinitions"`
		InstallModes []struct {
			Type      string `json:"type"`
			Supported bool   `json:"supported"`
		} `json:"installModes"`
		Install struct {
			Strategy string `json:"strategy"`
			Spec     struct {
				Deployments []struct {
					Name  string            `json:"name"`
					Label map[string]string `json:"label"`
					Spec  json.RawMessage   `json:"spec"`
				} `json:"deployments"`
				Permissions        []permission `json:"permissions"`
				ClusterPermissions []permission `json:"clusterPermissions"`
			} `json:"spec"`
		} `json:"install"`
		RelatedImages []struct{ Name, Image string } `json:"relatedImages"`
	} `json:"spec"`
}

type permission struct {
	ServiceAccountName string `json:"serviceAccountName"`
	Rules              []any  `json:"rules"`
}

func readCSV(t *testing.T) *csv {
	t.Helper()
	var c csv
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(root, "bundle/manifests/edgetwin.clusterserviceversion.yaml")), &c); err != nil {
		t.Fatalf("reading the CSV: %v", err)
	}
	return &c
}

// TestBundleOwnsTheGeneratedCRDs: every CRD in config/crd/bases is in the bundle byte for byte
// and listed as owned, with its storage version, kind and a description.
func TestBundleOwnsTheGeneratedCRDs(t *testing.T) {
	c := readCSV(t)
	generated, _ := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
	if len(generated) == 0 {
		t.Fatal("no generated CRDs")
	}
	owned := map[string]bool{}
	for _, o := range c.Spec.CustomResourceDefinitions.Owned {
		owned[o.Name+" "+o.Version+" "+o.Kind] = true
		if o.Description == "" || o.DisplayName == "" {
			t.Errorf("owned CRD %s lacks a description or display name", o.Name)
		}
	}
	for _, p := range generated {
		raw := mustRead(t, p)
		copied, err := os.ReadFile(filepath.Join(root, "bundle/manifests", filepath.Base(p)))
		if err != nil || !bytes.Equal(copied, raw) {
			t.Errorf("bundle/manifests/%s is missing or differs from %s: run 'make bundle'", filepath.Base(p), p)
		}
		var crd struct {
			Metadata struct{ Name string }
			Spec     struct {
				Names    struct{ Kind string }
				Versions []struct {
					Name    string
					Storage bool
				}
			}
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatal(err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage && !owned[crd.Metadata.Name+" "+v.Name+" "+crd.Spec.Names.Kind] {
				t.Errorf("the CSV does not own %s %s (%s)", crd.Metadata.Name, v.Name, crd.Spec.Names.Kind)
			}
		}
	}
	if len(c.Spec.CustomResourceDefinitions.Owned) != len(generated) {
		t.Errorf("the CSV owns %d CRDs, config/crd/bases has %d", len(c.Spec.CustomResourceDefinitions.Owned), len(generated))
	}
}

// TestBundleExamplesAreAccepted: alm-examples are config/samples, one at least per owned kind,
// and the API server accepts each (a server-side dry run, with the CRDs' validation).
func TestBundleExamplesAreAccepted(t *testing.T) {
	c := readCSV(t)
	var examples []map[string]any
	if err := json.Unmarshal([]byte(c.Metadata.Annotations["alm-examples"]), &examples); err != nil {
		t.Fatalf("alm-examples is not a JSON array of objects: %v", err)
	}
	samples := map[string]bool{}
	paths, _ := filepath.Glob(filepath.Join(root, "config/samples/*.yaml"))
	for _, p := range paths {
		for _, u := range decodeObjects(t, mustRead(t, p)) {
			samples[u.GetKind()+"/"+u.GetName()] = true
		}
	}
	kinds := map[string]bool{}
	for _, ex := range examples {
		u := &unstructured.Unstructured{Object: ex}
		kinds[u.GetKind()] = true
		if !samples[u.GetKind()+"/"+u.GetName()] {
			t.Errorf("alm-example %s/%s is not in config/samples", u.GetKind(), u.GetName())
		}
		delete(samples, u.GetKind()+"/"+u.GetName())
		if err := cl.Client.Create(context.Background(), u, client.DryRunAll); err != nil {
			t.Errorf("the API server refuses alm-example %s/%s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for s := range samples {
		t.Errorf("sample %s is missing from alm-examples: run 'make bundle'", s)
	}
	for _, o := range c.Spec.CustomResourceDefinitions.Owned {
		if !kinds[o.Kind] {
			t.Errorf("no alm-example for the owned kind %s", o.Kind)
		}
	}
}

// rbacFor returns the rules of the ClusterRoles and of the Roles bound to a service account in
// an RBAC manifest.
func rbacFor(t *testing.T, objs []*unstructured.Unstructured, sa, ns string) (cluster, namespaced []any) {
	t.Helper()
	for _, b := range objs {
		if b.GetKind() != "ClusterRoleBinding" && b.GetKind() != "RoleBinding" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		bound := false
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			bound = bound || (m["kind"] == "ServiceAccount" && m["name"] == sa && m["namespace"] == ns)
		}
		if !bound {
			continue
		}
		kind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		name, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		rules := rulesOf(t, find(t, objs, kind, name))
		if b.GetKind() == "ClusterRoleBinding" {
			cluster = append(cluster, rules...)
		} else {
			namespaced = append(namespaced, rules...)
		}
	}
	return cluster, namespaced
}

// TestBundleRBACIsConfigRBAC: the CSV grants the operator's service account exactly what
// config/rbac grants cloudcore's, cluster-wide and in its namespace.
func TestBundleRBACIsConfigRBAC(t *testing.T) {
	c := readCSV(t)
	objs := decodeObjects(t, kubectl(t, nil, "kustomize", "config/rbac"))
	wantCluster, wantNamespaced := rbacFor(t, objs, "controller-manager", "system")
	if len(wantCluster) == 0 || len(wantNamespaced) == 0 {
		t.Fatalf("config/rbac binds no rules to controller-manager: %d cluster, %d namespaced", len(wantCluster), len(wantNamespaced))
	}
	perms, clusterPerms := c.Spec.Install.Spec.Permissions, c.Spec.Install.Spec.ClusterPermissions
	if len(perms) != 1 || len(clusterPerms) != 1 {
		t.Fatalf("the CSV has %d permissions and %d clusterPermissions, want one of each", len(perms), len(clusterPerms))
	}
	if !equalRules(clusterPerms[0].Rules, wantCluster) {
		t.Errorf("clusterPermissions %v, config/rbac %v", clusterPerms[0].Rules, wantCluster)
	}
	if !equalRules(perms[0].Rules, wantNamespaced) {
		t.Errorf("permissions %v, config/rbac %v", perms[0].Rules, wantNamespaced)
	}
}

// TestBundleInstallStrategyIsComplete: one deployment, the one config/default renders, whose
// pod runs as the service account the permissions name; the API server accepts it, and every
// other manifest in the bundle.
func TestBundleInstallStrategyIsComplete(t *testing.T) {
	c := readCSV(t)
	if c.APIVersion != "operators.coreos.com/v1alpha1" || c.Kind != "ClusterServiceVersion" {
		t.Errorf("the CSV is a %s %s", c.APIVersion, c.Kind)
	}
	if c.Spec.Install.Strategy != "deployment" || len(c.Spec.Install.Spec.Deployments) != 1 {
		t.Fatalf("install strategy %q with %d deployments, want deployment with 1", c.Spec.Install.Strategy, len(c.Spec.Install.Spec.Deployments))
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(c.Spec.Version) || c.Metadata.Name != "edgetwin.v"+c.Spec.Version {
		t.Errorf("name %s and version %s: want edgetwin.vX.Y.Z with spec.version X.Y.Z", c.Metadata.Name, c.Spec.Version)
	}
	if c.Spec.DisplayName == "" || c.Spec.Description == "" {
		t.Error("the CSV lacks a display name or description")
	}
	allNamespaces := false
	for _, m := range c.Spec.InstallModes {
		allNamespaces = allNamespaces || (m.Type == "AllNamespaces" && m.Supported)
	}
	if !allNamespaces || len(c.Spec.InstallModes) != 4 {
		t.Errorf("installModes %v: want all four listed, AllNamespaces supported", c.Spec.InstallModes)
	}

	d := c.Spec.Install.Spec.Deployments[0]
	var spec appsv1.DeploymentSpec
	dec := json.NewDecoder(bytes.NewReader(d.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("the deployment's spec is not a DeploymentSpec: %v", err)
	}
	rendered := decodeObjects(t, kubectl(t, nil, "kustomize", "config/default"))
	want := find(t, rendered, "Deployment", d.Name)
	wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
	var gotSpec map[string]any
	if err := json.Unmarshal(d.Spec, &gotSpec); err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(wantSpec)
	gotJSON, _ := json.Marshal(gotSpec)
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("the CSV's deployment differs from config/default's: run 'make bundle'")
	}
	sa := spec.Template.Spec.ServiceAccountName
	for _, p := range append(c.Spec.Install.Spec.Permissions, c.Spec.Install.Spec.ClusterPermissions...) {
		if p.ServiceAccountName != sa {
			t.Errorf("permissions for %s, but the pod runs as %s", p.ServiceAccountName, sa)
		}
	}
	if spec.Replicas == nil || *spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", spec.Replicas)
	}
	image := spec.Template.Spec.Containers[0].Image
	if c.Metadata.Annotations["containerImage"] != image ||
		!slices.ContainsFunc(c.Spec.RelatedImages, func(r struct{ Name, Image string }) bool { return r.Image == image }) {
		t.Errorf("the image %s is not the containerImage annotation nor in relatedImages", image)
	}

	// OLM creates the deployment in the namespace it installs into: the API server accepts it.
	const ns = "edgetwin-system"
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: d.Label}, Spec: spec}
	if err := cl.Client.Create(context.Background(), deploy, client.DryRunAll); err != nil {
		t.Errorf("the API server refuses the CSV's deployment: %v", err)
	}
	others, _ := filepath.Glob(filepath.Join(root, "bundle/manifests/*.yaml"))
	for _, p := range others {
		if strings.HasSuffix(p, ".clusterserviceversion.yaml") || strings.HasPrefix(filepath.Base(p), "edgetwin.dev_") {
			continue
		}
		for _, u := range decodeObjects(t, mustRead(t, p)) {
			if u.GetKind() != "ClusterRole" {
				u.SetNamespace(ns)
			}
			if err := cl.Client.Create(context.Background(), u, client.DryRunAll); err != nil {
				t.Errorf("the API server refuses %s: %v", filepath.Base(p), err)
			}
		}
	}
}

// TestBundleAnnotationsMatchTheLayout: metadata/annotations.yaml and bundle.Dockerfile's
// labels say the same, and name the directories and package the bundle has.
func TestBundleAnnotationsMatchTheLayout(t *testing.T) {
	var meta struct{ Annotations map[string]string }
	if err := yaml.UnmarshalStrict(mustRead(t, filepath.Join(root, "bundle/metadata/annotations.yaml")), &meta); err != nil {
		t.Fatal(err)
	}
	a := meta.Annotations
	const prefix = "operators.operatorframework.io.bundle."
	want := map[string]string{prefix + "mediatype.v1": "registry+v1", prefix + "manifests.v1": "manifests/", prefix + "metadata.v1": "metadata/"}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %q, want %q", k, a[k], v)
		}
	}
	for _, dir := range []string{a[prefix+"manifests.v1"], a[prefix+"metadata.v1"]} {
		if info, err := os.Stat(filepath.Join(root, "bundle", dir)); err != nil || !info.IsDir() {
			t.Errorf("the bundle has no directory %s", dir)
		}
	}
	c := readCSV(t)
	if pkg := a[prefix+"package.v1"]; pkg == "" || !strings.HasPrefix(c.Metadata.Name, pkg+".v") {
		t.Errorf("package %q does not name the CSV %s", pkg, c.Metadata.Name)
	}
	if !slices.Contains(strings.Split(a[prefix+"channels.v1"], ","), a[prefix+"channel.default.v1"]) {
		t.Errorf("the default channel %q is not among the channels %q", a[prefix+"channel.default.v1"], a[prefix+"channels.v1"])
	}

	// bundle.Dockerfile: the same labels, and the two directories copied where OLM reads them.
	labels := map[string]string{}
	var copies []string
	for line := range strings.SplitSeq(string(mustRead(t, filepath.Join(root, "bundle.Dockerfile"))), "\n") {
		if rest, ok := strings.CutPrefix(line, "LABEL "); ok {
			k, v, _ := strings.Cut(rest, "=")
			labels[k] = v
		}
		if rest, ok := strings.CutPrefix(line, "COPY "); ok {
			copies = append(copies, rest)
		}
	}
	keys := func(m map[string]string) []string {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k+"="+m[k])
		}
		slices.Sort(ks)
		return ks
	}
	if !slices.Equal(keys(labels), keys(a)) {
		t.Errorf("bundle.Dockerfile's labels %v differ from annotations.yaml %v", keys(labels), keys(a))
	}
	wantCopies := []string{"bundle/manifests /manifests/", "bundle/metadata /metadata/"}
	if !slices.Equal(copies, wantCopies) {
		t.Errorf("bundle.Dockerfile copies %v, want %v", copies, wantCopies)
	}
}
