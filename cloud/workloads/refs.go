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

// Package workloads projects what edge nodes need to run their Pods onto CloudHub's link: the
// Pods bound to each edge node, the ConfigMaps and Secrets those Pods use, and a service account
// token for each Pod that mounts one. It follows the same rules as devices: level-based (each
// projection answers "what should node N hold"), acknowledged, and resynced on every connect.
// It also writes Pod status from the edge's reports under the shared status-write budget, and
// finishes the deletion of Pods once their node has let them go.
package workloads

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// references lists the ConfigMaps and Secrets (by name, in the Pod's namespace) a Pod uses:
// volumes (projected ones included), env and envFrom of every container, and image pull secrets.
func references(pod *corev1.Pod) (configMaps, secrets []string) {
	cm := map[string]bool{}
	sec := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm[v.ConfigMap.Name] = true
		case v.Secret != nil:
			sec[v.Secret.SecretName] = true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cm[s.ConfigMap.Name] = true
				}
				if s.Secret != nil {
					sec[s.Secret.Name] = true
				}
			}
		}
	}
	containers := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cm[e.ConfigMapRef.Name] = true
			}
			if e.SecretRef != nil {
				sec[e.SecretRef.Name] = true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm[r.Name] = true
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				sec[r.Name] = true
			}
		}
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		sec[s.Name] = true
	}
	delete(cm, "")
	delete(sec, "")
	return sortedKeys(cm), sortedKeys(sec)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// tokenSource returns the Pod's projected service account token source (the one of the
// kube-api-access volume Kubernetes adds to every Pod), or nil. edgetwin supplies one token per
// Pod; a Pod asking for tokens of several audiences gets the first.
func tokenSource(pod *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return s.ServiceAccountToken
			}
		}
	}
	return nil
}
