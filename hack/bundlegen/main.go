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

// Command bundlegen writes edgetwin's operator bundle in the operator-sdk layout
// (bundle/manifests, bundle/metadata/annotations.yaml, bundle.Dockerfile) from the sources
// the other installs use:
//
//	kubectl kustomize config/default | bundlegen --version 0.1.0
//
// The install strategy (the Deployment), the permissions (the Roles and ClusterRoles bound to
// the Deployment's service account) and the other objects (Services, the ConfigMap, the
// ClusterRoles for users) come from the rendered kustomize output on stdin; the owned CRDs are
// copied byte for byte from config/crd/bases; alm-examples are config/samples; the rest of the
// ClusterServiceVersion is config/manifests/bases. operator-sdk is not needed, and
// test/packaging validates the result against the API server.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Package, Channel: the bundle's package and its one channel.
const (
	Package = "edgetwin"
	Channel = "alpha"
)

func main() {
	if err := run(os.Args[1:], os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
}

type options struct {
	version, base, crds, samples, output, dockerfile string
}

func run(args []string, stdin io.Reader) error {
	var o options
	fs := flag.NewFlagSet("bundlegen", flag.ContinueOnError)
	fs.StringVar(&o.version, "version", "", "The bundle's version (semver, without a v).")
	fs.StringVar(&o.base, "base", "config/manifests/bases/edgetwin.clusterserviceversion.yaml", "The hand-written part of the CSV.")
	fs.StringVar(&o.crds, "crds", "config/crd/bases", "The generated CRDs.")
	fs.StringVar(&o.samples, "samples", "config/samples", "One example per CRD, for alm-examples.")
	fs.StringVar(&o.output, "output", "bundle", "The bundle directory; its manifests/ and metadata/ are replaced.")
	fs.StringVar(&o.dockerfile, "dockerfile", "bundle.Dockerfile", "Where to write the bundle image's Dockerfile.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.version == "" || strings.HasPrefix(o.version, "v") {
		return errors.New("--version is required, as semver without a leading v (0.1.0)")
	}
	objs, err := decodeAll(stdin)
	if err != nil {
		return fmt.Errorf("reading the kustomize output on stdin: %w", err)
	}
	files, err := generate(o, objs)
	if err != nil {
		return err
	}
	for _, dir := range []string{"manifests", "metadata"} {
		if err := os.RemoveAll(filepath.Join(o.output, dir)); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func decodeAll(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

const (
	clusterRoleBinding = "ClusterRoleBinding"
	roleBinding        = "RoleBinding"
)

// olmCreates are the kinds OLM makes itself from the CSV, or that it does not take in a bundle.
var olmCreates = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "Deployment": true, "ServiceAccount": true,
	roleBinding: true, clusterRoleBinding: true,
}

// generate returns every file of the bundle by path.
func generate(o options, objs []*unstructured.Unstructured) (map[string][]byte, error) {
	files := map[string][]byte{}
	manifests := filepath.Join(o.output, "manifests")

	var deploy *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "Deployment" {
			if deploy != nil {
				return nil, errors.New("the kustomize output has more than one Deployment")
			}
			deploy = u
		}
	}
	if deploy == nil {
		return nil, errors.New("the kustomize output has no Deployment")
	}
	sa, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")
	if sa == "" {
		return nil, errors.New("the Deployment names no service account")
	}
	clusterRules, rules, bound, err := permissions(objs, sa, deploy.GetNamespace())
	if err != nil {
		return nil, err
	}

	// Objects OLM creates itself (namespace, CRDs, service account, the operator's roles and
	// bindings) stay out; the rest ships as they are, without a namespace.
	for _, u := range objs {
		kind := u.GetKind()
		if olmCreates[kind] || bound[kind+"/"+u.GetName()] {
			continue
		}
		u = u.DeepCopy()
		u.SetNamespace("")
		raw, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		version := strings.ReplaceAll(u.GetAPIVersion(), "/", "_")
		files[filepath.Join(manifests, fmt.Sprintf("%s_%s_%s.yaml", u.GetName(), version, strings.ToLower(kind)))] = raw
	}

	owned, err := ownedCRDs(o.crds, manifests, files)
	if err != nil {
		return nil, err
	}
	examples, err := almExamples(o.samples)
	if err != nil {
		return nil, err
	}
	csv, err := clusterServiceVersion(o, deploy, sa, clusterRules, rules, owned, examples)
	if err != nil {
		return nil, err
	}
	files[filepath.Join(manifests, Package+".clusterserviceversion.yaml")] = csv

	annotations := bundleAnnotations()
	raw, err := yaml.Marshal(map[string]any{"annotations": annotations})
	if err != nil {
		return nil, err
	}
	files[filepath.Join(o.output, "metadata", "annotations.yaml")] = raw
	files[o.dockerfile] = dockerfile(annotations, o.output)
	return files, nil
}

// bundleAnnotations are the bundle's metadata, in metadata/annotations.yaml and as the bundle
// image's labels.
func bundleAnnotations() map[string]string {
	return map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         Package,
		"operators.operatorframework.io.bundle.channels.v1":        Channel,
		"operators.operatorframework.io.bundle.channel.default.v1": Channel,
	}
}

func dockerfile(annotations map[string]string, bundleDir string) []byte {
	var b bytes.Buffer
	b.WriteString("# The operator bundle image. Written by 'make bundle' (hack/bundlegen): do not edit.\nFROM scratch\n\n")
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, annotations[k])
	}
	fmt.Fprintf(&b, "\nCOPY %s/manifests /manifests/\nCOPY %s/metadata /metadata/\n", filepath.ToSlash(bundleDir), filepath.ToSlash(bundleDir))
	return b.Bytes()
}

// permissions returns the rules of the ClusterRoles and of the Roles bound to the service
// account sa in namespace ns, in the order of the bindings' names, and the roles it used.
func permissions(objs []*unstructured.Unstructured, sa, ns string) (cluster, namespaced []any, used map[string]bool, err error) {
	roles := map[string]*unstructured.Unstructured{}
	var bindings []*unstructured.Unstructured
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterRole", "Role":
			roles[u.GetKind()+"/"+u.GetName()] = u
		case clusterRoleBinding, roleBinding:
			bindings = append(bindings, u)
		}
	}
	slices.SortFunc(bindings, func(a, b *unstructured.Unstructured) int {
		return cmp.Compare(a.GetKind()+a.GetName(), b.GetKind()+b.GetName())
	})
	used = map[string]bool{}
	for _, b := range bindings {
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		if !slices.ContainsFunc(subjects, func(s any) bool {
			m, _ := s.(map[string]any)
			return m["kind"] == "ServiceAccount" && m["name"] == sa && m["namespace"] == ns
		}) {
			continue
		}
		refKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		role, ok := roles[refKind+"/"+refName]
		if !ok {
			return nil, nil, nil, fmt.Errorf("%s %s binds %s %s, which the kustomize output lacks", b.GetKind(), b.GetName(), refKind, refName)
		}
		used[refKind+"/"+refName] = true
		rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
		if b.GetKind() == clusterRoleBinding {
			cluster = append(cluster, rules...)
		} else {
			namespaced = append(namespaced, rules...)
		}
	}
	return cluster, namespaced, used, nil
}

// ownedCRDs copies the CRDs into the bundle unchanged and describes each for the CSV.
func ownedCRDs(dir, manifests string, files map[string][]byte) ([]any, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no CRDs in %s", dir)
	}
	owned := make([]any, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files[filepath.Join(manifests, filepath.Base(p))] = raw
		var crd struct {
			Metadata struct{ Name string }
			Spec     struct {
				Names    struct{ Kind string }
				Versions []struct {
					Name    string
					Storage bool
					Schema  struct {
						OpenAPIV3Schema struct{ Description string } `json:"openAPIV3Schema"`
					}
				}
			}
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Storage {
				continue
			}
			owned = append(owned, map[string]any{
				"name":        crd.Metadata.Name, //nolint:goconst // field names of different objects
				"version":     v.Name,
				"kind":        crd.Spec.Names.Kind,
				"displayName": displayName(crd.Spec.Names.Kind),
				"description": firstSentence(v.Schema.OpenAPIV3Schema.Description),
			})
		}
	}
	return owned, nil
}

// displayName spells a kind as words: DeviceModel becomes "Device Model".
func displayName(kind string) string {
	var b strings.Builder
	for i, r := range kind {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// almExamples returns the samples as one JSON array, sorted by kind and name.
func almExamples(dir string) (string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return "", err
	}
	var examples []map[string]any
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		objs, err := decodeAll(f)
		_ = f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		for _, u := range objs {
			examples = append(examples, u.Object)
		}
	}
	if len(examples) == 0 {
		return "", fmt.Errorf("no samples in %s", dir)
	}
	slices.SortStableFunc(examples, func(x, y map[string]any) int {
		a, b := &unstructured.Unstructured{Object: x}, &unstructured.Unstructured{Object: y}
		return cmp.Compare(a.GetKind()+"/"+a.GetName(), b.GetKind()+"/"+b.GetName())
	})
	raw, err := json.MarshalIndent(examples, "", "  ")
	return string(raw), err
}

func clusterServiceVersion(o options, deploy *unstructured.Unstructured, sa string, clusterRules, rules, owned []any,
	examples string) ([]byte, error) {
	raw, err := os.ReadFile(o.base)
	if err != nil {
		return nil, err
	}
	csv := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &csv.Object); err != nil {
		return nil, fmt.Errorf("%s: %w", o.base, err)
	}
	csv.SetName(Package + ".v" + o.version)
	annotations := csv.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	image, err := operatorImage(deploy)
	if err != nil {
		return nil, err
	}
	annotations["alm-examples"] = examples
	annotations["containerImage"] = image
	annotations["operators.operatorframework.io/builder"] = "edgetwin-bundlegen"
	annotations["operators.operatorframework.io/project_layout"] = "go.kubebuilder.io/v4"
	csv.SetAnnotations(annotations)

	spec, _, _ := unstructured.NestedMap(deploy.Object, "spec")
	deployment := map[string]any{"name": deploy.GetName(), "spec": spec}
	if labels, ok, _ := unstructured.NestedMap(deploy.Object, "metadata", "labels"); ok {
		deployment["label"] = labels
	}
	install := map[string]any{"deployments": []any{deployment}}
	if len(clusterRules) > 0 {
		install["clusterPermissions"] = []any{map[string]any{"serviceAccountName": sa, "rules": clusterRules}}
	}
	if len(rules) > 0 {
		install["permissions"] = []any{map[string]any{"serviceAccountName": sa, "rules": rules}}
	}
	set := func(value any, path ...string) error {
		return unstructured.SetNestedField(csv.Object, value, path...)
	}
	for _, err := range []error{
		set(o.version, "spec", "version"),
		set(map[string]any{"strategy": "deployment", "spec": install}, "spec", "install"),
		set(map[string]any{"owned": owned}, "spec", "customresourcedefinitions"),
		set([]any{map[string]any{"name": "cloudcore", "image": image}}, "spec", "relatedImages"),
	} {
		if err != nil {
			return nil, err
		}
	}
	return yaml.Marshal(csv.Object)
}

func operatorImage(deploy *unstructured.Unstructured) (string, error) {
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		return "", fmt.Errorf("the Deployment has %d containers, want 1", len(containers))
	}
	c, _ := containers[0].(map[string]any)
	image, _ := c["image"].(string)
	if image == "" {
		return "", errors.New("the Deployment's container has no image")
	}
	return image, nil
}
