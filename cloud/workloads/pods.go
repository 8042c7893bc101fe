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

package workloads

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Field indexes on Pods, registered by Setup.
const (
	// IndexPodNodeName indexes Pods by spec.nodeName.
	IndexPodNodeName = "spec.nodeName"
	// IndexPodConfigMaps indexes Pods by the ConfigMaps they use (names in their namespace).
	IndexPodConfigMaps = "edgetwin.dev/configmaps"
	// IndexPodSecrets indexes Pods by the Secrets they use.
	IndexPodSecrets = "edgetwin.dev/secrets"
)

// Pods projects the Pods bound to a node. A Pod being deleted leaves the projection, so the edge
// stops it; Terminator then finishes the deletion once the edge has let it go.
type Pods struct {
	Reader client.Reader
}

var _ hub.Projection = (*Pods)(nil)

// Kind implements hub.Projection.
func (p *Pods) Kind() wire.Kind { return wire.KindPod }

// List implements hub.Projection.
func (p *Pods) List(ctx context.Context, node string) ([]hub.Object, error) {
	pods, err := podsOn(ctx, p.Reader, node)
	if err != nil {
		return nil, err
	}
	out := make([]hub.Object, 0, len(pods))
	for _, pod := range pods {
		o, err := podObject(pod)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Get implements hub.Projection.
func (p *Pods) Get(ctx context.Context, node string, ref wire.ObjectRef) (hub.Object, bool, error) {
	pod, err := podFor(ctx, p.Reader, node, ref)
	if pod == nil || err != nil {
		return hub.Object{}, false, err
	}
	o, err := podObject(pod)
	return o, err == nil, err
}

// podFor returns the Pod named by ref (a Pod's or a token's, named after its Pod) if node should
// run it, or nil.
func podFor(ctx context.Context, r client.Reader, node string, ref wire.ObjectRef) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if !runsOn(pod, node) {
		return nil, nil
	}
	return pod, nil
}

// podsOn lists the Pods node should run.
func podsOn(ctx context.Context, r client.Reader, node string) ([]*corev1.Pod, error) {
	var list corev1.PodList
	if err := r.List(ctx, &list, client.MatchingFields{IndexPodNodeName: node}); err != nil {
		return nil, fmt.Errorf("listing the Pods of node %s: %w", node, err)
	}
	out := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		if runsOn(&list.Items[i], node) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// runsOn reports whether node should run pod: bound to it and not being deleted. A Pod that
// finished (Succeeded or Failed) stays, so the edge keeps reporting its final status and does
// not start it again.
func runsOn(pod *corev1.Pod, node string) bool {
	return node != "" && pod.Spec.NodeName == node && pod.DeletionTimestamp == nil
}

// podObject is the Pod as the edge receives it: metadata the edge uses and the spec, without
// status and bookkeeping, so a status write never changes the version the edge holds.
func podObject(pod *corev1.Pod) (hub.Object, error) {
	body := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			Labels: pod.Labels, Annotations: pod.Annotations, OwnerReferences: pod.OwnerReferences,
			CreationTimestamp: pod.CreationTimestamp,
		},
		Spec: pod.Spec,
	}
	return hub.NewObject(wire.KindPod, pod.Namespace, pod.Name, body)
}
