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

// Configs projects the ConfigMaps (or Secrets) that a node's Pods use, and nothing else: a
// node never receives a Secret none of its Pods names.
type Configs struct {
	Reader client.Reader
	// Secrets selects Secrets instead of ConfigMaps.
	Secrets bool
}

var _ hub.Projection = (*Configs)(nil)

// Kind implements hub.Projection.
func (c *Configs) Kind() wire.Kind {
	if c.Secrets {
		return wire.KindSecret
	}
	return wire.KindConfigMap
}

func (c *Configs) index() string {
	if c.Secrets {
		return IndexPodSecrets
	}
	return IndexPodConfigMaps
}

func (c *Configs) used(pod *corev1.Pod) []string {
	cms, secs := references(pod)
	if c.Secrets {
		return secs
	}
	return cms
}

// List implements hub.Projection.
func (c *Configs) List(ctx context.Context, node string) ([]hub.Object, error) {
	pods, err := podsOn(ctx, c.Reader, node)
	if err != nil {
		return nil, err
	}
	seen := map[types.NamespacedName]bool{}
	var out []hub.Object
	for _, pod := range pods {
		for _, name := range c.used(pod) {
			key := types.NamespacedName{Namespace: pod.Namespace, Name: name}
			if seen[key] {
				continue
			}
			seen[key] = true
			o, ok, err := c.object(ctx, key)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// Get implements hub.Projection.
func (c *Configs) Get(ctx context.Context, node string, ref wire.ObjectRef) (hub.Object, bool, error) {
	users, err := c.usersOn(ctx, node, ref.Namespace, ref.Name)
	if err != nil || len(users) == 0 {
		return hub.Object{}, false, err
	}
	return c.object(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name})
}

// usersOn lists the Pods on node that use the named object.
func (c *Configs) usersOn(ctx context.Context, node, namespace, name string) ([]*corev1.Pod, error) {
	var list corev1.PodList
	if err := c.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{c.index(): name}); err != nil {
		return nil, fmt.Errorf("listing the Pods that use %s %s/%s: %w", c.Kind(), namespace, name, err)
	}
	var out []*corev1.Pod
	for i := range list.Items {
		if runsOn(&list.Items[i], node) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// object reads and shapes the ConfigMap or Secret; a missing one is simply not held (the Pod
// waits for it at the edge, as a kubelet's would).
func (c *Configs) object(ctx context.Context, key types.NamespacedName) (hub.Object, bool, error) {
	if c.Secrets {
		s := &corev1.Secret{}
		if err := c.Reader.Get(ctx, key, s); err != nil {
			return hub.Object{}, false, client.IgnoreNotFound(err)
		}
		body := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: slim(s.ObjectMeta),
			Immutable: s.Immutable, Data: s.Data, Type: s.Type}
		o, err := hub.NewObject(wire.KindSecret, s.Namespace, s.Name, body)
		return o, err == nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := c.Reader.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return hub.Object{}, false, nil
		}
		return hub.Object{}, false, err
	}
	body := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: slim(cm.ObjectMeta),
		Immutable: cm.Immutable, Data: cm.Data, BinaryData: cm.BinaryData}
	o, err := hub.NewObject(wire.KindConfigMap, cm.Namespace, cm.Name, body)
	return o, err == nil, err
}

// slim keeps the metadata the edge uses, so bookkeeping changes do not resend the object.
func slim(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, Labels: m.Labels}
}
