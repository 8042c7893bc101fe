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

// Package samples embeds the sample manifests the README uses, so that 'edgetwin dev' applies
// exactly them wherever it runs: the edgetwin.dev objects (Objects, the files here, which are
// also the CRDs' examples in the operator bundle) and the workloads for edge nodes that run pods
// (Workloads, the files in workloads/).
package samples

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed *.yaml workloads/*.yaml
var manifests embed.FS

// Objects returns every sample edgetwin.dev object, in file-name order.
func Objects() ([]*unstructured.Unstructured, error) { return objects("*.yaml") }

// Workloads returns the sample workloads (a Deployment pinned to edge-1), in file-name order.
// They only run on an edge node with Edged.
func Workloads() ([]*unstructured.Unstructured, error) { return objects("workloads/*.yaml") }

func objects(pattern string) ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(manifests, pattern)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(names))
	for _, name := range names {
		raw, err := manifests.ReadFile(name)
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path.Base(name), err)
		}
		out = append(out, obj)
	}
	return out, nil
}
