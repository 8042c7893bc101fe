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

package samples

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

func TestTheSampleObjectsAreEdgetwinKindsOnly(t *testing.T) {
	objs, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no sample objects")
	}
	for _, o := range objs {
		if o.GroupVersionKind().Group != "edgetwin.dev" {
			t.Errorf("sample %s %s is not an edgetwin.dev kind: workloads go to workloads/, not among the CRDs' examples",
				o.GetKind(), o.GetName())
		}
	}
}

// The sample Deployment is one the edge node can run: pinned to edge-1 past the edge taint,
// with the image the node has imported and a policy that never pulls it.
func TestTheSampleWorkloadRunsOnEdge1(t *testing.T) {
	objs, err := Workloads()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetKind() != "Deployment" {
		t.Fatalf("Workloads() = %d objects, want the one Deployment", len(objs))
	}
	raw, err := json.Marshal(objs[0].Object)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatalf("the sample is not a valid apps/v1 Deployment: %v", err)
	}
	spec := d.Spec.Template.Spec
	if got := spec.NodeSelector[corev1.LabelHostname]; got != "edge-1" {
		t.Errorf("nodeSelector %s = %q, want edge-1", corev1.LabelHostname, got)
	}
	edgeTaint := corev1.Taint{Key: "node-role.kubernetes.io/edge", Effect: corev1.TaintEffectNoSchedule}
	tolerated := false
	for _, tol := range spec.Tolerations {
		tolerated = tolerated || tol.ToleratesTaint(klog.Background(), &edgeTaint, false)
	}
	if !tolerated {
		t.Errorf("tolerations %+v do not tolerate the edge taint", spec.Tolerations)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != "edgetwin.dev/workload:1" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s with policy %q, want edgetwin.dev/workload:1 with IfNotPresent", c.Image, c.ImagePullPolicy)
	}
}
