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

package autonomy

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/pkg/controlplane/cptest"
)

var suite cptest.Suite

func TestMain(m *testing.M) { os.Exit(cptest.Run(m, &suite)) }

const edgeTaint = "node-role.kubernetes.io/edge"

// describe renders tolerations as key:effect:seconds, sorted.
func describe(ts []corev1.Toleration) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		secs := "forever"
		if t.TolerationSeconds != nil {
			secs = fmt.Sprint(*t.TolerationSeconds)
		}
		out = append(out, fmt.Sprintf("%s:%s:%s", t.Key, t.Effect, secs))
	}
	slices.Sort(out)
	return out
}

func TestPodsForEdgeNodesAreNeverEvictedByAnOutage(t *testing.T) {
	ctx := context.Background()
	if err := Ensure(ctx, suite.Client, edgeTaint); err != nil {
		t.Fatal(err)
	}
	// Twice: installing is idempotent (cloudcore does it at every start).
	if err := Ensure(ctx, suite.Client, edgeTaint); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "autonomy-"}}
	if err := suite.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	edgeToleration := corev1.Toleration{Key: edgeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	// The API server takes a moment to load a new policy: wait until a dry-run edge Pod shows it.
	deadline := time.Now().Add(time.Minute)
	for {
		probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "probe"},
			Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{edgeToleration},
				Containers: []corev1.Container{{Name: "app", Image: "edgetwin.dev/workload:1"}}}}
		if err := suite.Client.Create(ctx, probe, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(describe(probe.Spec.Tolerations), "node.kubernetes.io/unreachable:NoExecute:forever") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy never took effect: a probe Pod got %v", describe(probe.Spec.Tolerations))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tc := range []struct {
		name        string
		tolerations []corev1.Toleration
		want        []string
	}{
		{"an ordinary Pod keeps Kubernetes' eviction", nil, []string{
			"node.kubernetes.io/not-ready:NoExecute:300", "node.kubernetes.io/unreachable:NoExecute:300"}},
		{"a Pod for edge nodes tolerates outages forever", []corev1.Toleration{edgeToleration}, []string{
			edgeTaint + ":NoSchedule:forever", "node.kubernetes.io/not-ready:NoExecute:forever", "node.kubernetes.io/unreachable:NoExecute:forever"}},
		// (The API server adds no outage tolerations to a Pod that tolerates every taint.)
		{"a Pod that tolerates every taint is left as it is", []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, []string{"::forever"}},
		{"an edge Pod's own time limit is kept", []corev1.Toleration{edgeToleration,
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)}},
			[]string{edgeTaint + ":NoSchedule:forever", "node.kubernetes.io/not-ready:NoExecute:forever", "node.kubernetes.io/unreachable:NoExecute:60"}},
		{"a Pod tolerating only the edge taint's NoExecute effect is not one for edge nodes", []corev1.Toleration{
			{Key: edgeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}, []string{
			edgeTaint + ":NoExecute:forever", "node.kubernetes.io/not-ready:NoExecute:300", "node.kubernetes.io/unreachable:NoExecute:300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, GenerateName: "p-"},
				Spec: corev1.PodSpec{Tolerations: tc.tolerations,
					Containers: []corev1.Container{{Name: "app", Image: "edgetwin.dev/workload:1"}}},
			}
			if err := suite.Client.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			if got := describe(pod.Spec.Tolerations); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("tolerations = %v, want %v", got, tc.want)
			}
		})
	}
}
