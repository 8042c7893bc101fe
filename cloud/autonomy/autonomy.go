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

// Package autonomy keeps a long link outage from evicting the Pods of edge nodes.
//
// When an edge node's link drops, cloudcore sets its Node's Ready condition to Unknown (the cloud
// cannot tell how the node is), and kube-controller-manager taints the Node
// node.kubernetes.io/unreachable:NoExecute. Every Pod carries a toleration of that taint for
// 300 seconds, added by the API server's DefaultTolerationSeconds admission plugin; after that
// the taint-eviction controller deletes the Pod, and on reconnect the edge would be told to
// stop it. On an edge node that is exactly wrong: the outage is normal and the workload must
// keep running.
//
// edgetwin installs a MutatingAdmissionPolicy (in-tree, GA since Kubernetes 1.36; no webhook
// server) that rewrites, at Pod creation, the unreachable and not-ready NoExecute tolerations of
// every Pod that tolerates the edge taint into tolerations without a time limit. A Pod can only
// land on an edge node by tolerating the edge taint, so the edge taint is the opt-in: Pods for
// edge nodes are never evicted by an outage, and Pods of ordinary nodes keep Kubernetes'
// behaviour. DaemonSet Pods already tolerate both taints forever.
package autonomy

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PolicyName names the policy and its binding.
const PolicyName = "edgetwin-edge-autonomy"

// The taints the policy keeps Pods from being evicted for.
const (
	taintUnreachable = "node.kubernetes.io/unreachable"
	taintNotReady    = "node.kubernetes.io/not-ready"
)

// tolerates is true for a Pod that may be scheduled onto an edge node: it tolerates the edge
// taint by key, or tolerates every taint.
func tolerates(edgeTaint string) string {
	return fmt.Sprintf(`object.spec.?tolerations.orValue([]).exists(t,
  (has(t.key) && t.key == %q && (!has(t.effect) || t.effect == "" || t.effect == "NoSchedule")) ||
  ((!has(t.key) || t.key == "") && has(t.operator) && t.operator == "Exists"))`, edgeTaint)
}

// DefaultTolerationSeconds is the time limit the API server's DefaultTolerationSeconds plugin
// gives Pods (its --default-unreachable-toleration-seconds and
// --default-not-ready-toleration-seconds). Only tolerations with exactly this limit are
// rewritten: a limit the Pod's author chose is theirs to keep.
const DefaultTolerationSeconds = 300

// outage matches a NoExecute toleration of the unreachable or not-ready taint.
const outage = `has(t.key) && (t.key == "` + taintUnreachable + `" || t.key == "` + taintNotReady + `") &&
  has(t.effect) && t.effect == "NoExecute"`

// defaulted matches an outage toleration with the API server's default time limit.
var defaulted = outage + fmt.Sprintf(" && has(t.tolerationSeconds) && t.tolerationSeconds == %d", DefaultTolerationSeconds)

// Policy returns the policy and its binding for Pods that tolerate edgeTaint.
func Policy(edgeTaint string) (*admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Labels: map[string]string{"app.kubernetes.io/part-of": "edgetwin"}},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
							Resources: []string{"pods"}},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "tolerates-the-edge-taint", Expression: tolerates(edgeTaint)},
				{Name: "has-a-default-outage-toleration", Expression: "object.spec.?tolerations.orValue([]).exists(t, " + defaulted + ")"},
			},
			// Each defaulted outage toleration loses its time limit. Every toleration is rebuilt
			// (rather than passed through) because the API server cannot turn a mix of the
			// Pod's own and newly built tolerations back into JSON.
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{Expression: `[
  JSONPatch{op: "replace", path: "/spec/tolerations", value:
    object.spec.tolerations.map(t, Object.spec.tolerations{
      ?key: t.?key, ?operator: t.?operator, ?value: t.?value, ?effect: t.?effect,
      ?tolerationSeconds: (` + defaulted + `) ? optional.none() : t.?tolerationSeconds})}
]`},
			}},
			// Only Pods for edge nodes match; for them, a policy that cannot run refuses the Pod
			// rather than letting it be created evictable.
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Labels: map[string]string{"app.kubernetes.io/part-of": "edgetwin"}},
		Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: PolicyName},
	}
	return policy, binding
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingadmissionpolicies,verbs=get;create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingadmissionpolicybindings,verbs=get;create;patch

// Ensure installs (or updates) the policy and its binding, by server-side apply.
func Ensure(ctx context.Context, c client.Client, edgeTaint string) error {
	policy, binding := Policy(edgeTaint)
	for _, o := range []client.Object{policy, binding} {
		//nolint:staticcheck // client.Apply with typed objects is what this controller-runtime offers for built-in types.
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("cloudcore"), client.ForceOwnership); err != nil {
			return fmt.Errorf("installing the edge autonomy %s: %w", o.GetObjectKind().GroupVersionKind().Kind, err)
		}
	}
	return nil
}
