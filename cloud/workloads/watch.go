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
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Notifier is told when what a node should hold may have changed (CloudHub's Changed).
type Notifier interface {
	Changed(ctx context.Context, node string, ref wire.ObjectRef)
}

// Projections are the four workload projections, made together because they share indexes
// and watches.
type Projections struct {
	Pods       *Pods
	ConfigMaps *Configs
	Secrets    *Configs
	Tokens     *Tokens
}

// NewProjections makes the projections; c must read from the manager's cache.
func NewProjections(c client.Client) *Projections {
	return &Projections{
		Pods:       &Pods{Reader: c},
		ConfigMaps: &Configs{Reader: c},
		Secrets:    &Configs{Reader: c, Secrets: true},
		Tokens:     &Tokens{Client: c},
	}
}

// Index registers the Pod field indexes the projections list by. Call it before the cache
// starts.
func Index(ctx context.Context, indexer client.FieldIndexer) error {
	for name, f := range map[string]func(*corev1.Pod) []string{
		IndexPodNodeName:   func(p *corev1.Pod) []string { return []string{p.Spec.NodeName} },
		IndexPodConfigMaps: func(p *corev1.Pod) []string { cm, _ := references(p); return cm },
		IndexPodSecrets:    func(p *corev1.Pod) []string { _, s := references(p); return s },
	} {
		if err := indexer.IndexField(ctx, &corev1.Pod{}, name, func(o client.Object) []string { return f(o.(*corev1.Pod)) }); err != nil {
			return fmt.Errorf("indexing Pods by %s: %w", name, err)
		}
	}
	return nil
}

// Watch tells n whenever a Pod, or a ConfigMap or Secret a Pod uses, changes for some node, and
// renews tokens every renewEvery until ctx ends.
func (p *Projections) Watch(ctx context.Context, c cache.Cache, n Notifier, renewEvery time.Duration) error {
	podChanged := func(obj any) {
		pod, ok := unwrap(obj).(*corev1.Pod)
		if !ok || pod.Spec.NodeName == "" {
			return
		}
		node := pod.Spec.NodeName
		n.Changed(ctx, node, wire.ObjectRef{Kind: wire.KindPod, Namespace: pod.Namespace, Name: pod.Name})
		n.Changed(ctx, node, wire.ObjectRef{Kind: wire.KindServiceAccountToken, Namespace: pod.Namespace, Name: pod.Name})
		cms, secs := references(pod)
		for _, name := range cms {
			n.Changed(ctx, node, wire.ObjectRef{Kind: wire.KindConfigMap, Namespace: pod.Namespace, Name: name})
		}
		for _, name := range secs {
			n.Changed(ctx, node, wire.ObjectRef{Kind: wire.KindSecret, Namespace: pod.Namespace, Name: name})
		}
	}
	if err := handle(ctx, c, &corev1.Pod{}, toolscache.ResourceEventHandlerFuncs{
		AddFunc: podChanged,
		UpdateFunc: func(oldObj, newObj any) {
			oldPod, okOld := oldObj.(*corev1.Pod)
			newPod, okNew := newObj.(*corev1.Pod)
			if okOld && okNew && (oldPod.Spec.NodeName != newPod.Spec.NodeName || oldPod.UID != newPod.UID) {
				p.Tokens.forget(oldPod.UID)
				podChanged(oldObj) // the old node must drop what it no longer needs
			}
			podChanged(newObj)
		},
		DeleteFunc: func(obj any) {
			if pod, ok := unwrap(obj).(*corev1.Pod); ok {
				p.Tokens.forget(pod.UID)
			}
			podChanged(obj)
		},
	}); err != nil {
		return err
	}
	for _, cfg := range []struct {
		proj *Configs
		obj  client.Object
	}{{p.ConfigMaps, &corev1.ConfigMap{}}, {p.Secrets, &corev1.Secret{}}} {
		proj := cfg.proj
		changed := func(obj any) {
			o, ok := unwrap(obj).(client.Object)
			if !ok {
				return
			}
			var pods corev1.PodList
			if err := proj.Reader.List(ctx, &pods, client.InNamespace(o.GetNamespace()),
				client.MatchingFields{proj.index(): o.GetName()}); err != nil {
				return
			}
			nodes := map[string]bool{}
			for i := range pods.Items {
				if node := pods.Items[i].Spec.NodeName; node != "" && !nodes[node] {
					nodes[node] = true
					n.Changed(ctx, node, wire.ObjectRef{Kind: proj.Kind(), Namespace: o.GetNamespace(), Name: o.GetName()})
				}
			}
		}
		if err := handle(ctx, c, cfg.obj, toolscache.ResourceEventHandlerFuncs{
			AddFunc: changed, UpdateFunc: func(_, newObj any) { changed(newObj) }, DeleteFunc: changed,
		}); err != nil {
			return err
		}
	}
	go p.Tokens.Renew(ctx, n, renewEvery)
	return nil
}

func handle(ctx context.Context, c cache.Cache, obj client.Object, h toolscache.ResourceEventHandler) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("getting the %T informer: %w", obj, err)
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("watching %T: %w", obj, err)
	}
	return nil
}

// unwrap returns the object inside a DeletedFinalStateUnknown tombstone.
func unwrap(obj any) any {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
