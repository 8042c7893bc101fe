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

// Package edged is Edged: it runs the Pods bound to this node through CRI (containerd), from the
// Pod, ConfigMap, Secret and ServiceAccountToken objects the cloud sent and the store keeps, so
// that after a reboot with the cloud unreachable the node's pods start again from the store
// alone. One worker per pod drives its sandbox and containers towards the spec (kubelet's
// model, much reduced), restarts containers by the pod's restartPolicy with back-off, writes
// volumes (emptyDir, hostPath, configMap, secret, projected with the service account token) and
// puts the pod's status in the outbox when it changes. It garbage-collects the sandboxes and
// containers carrying its labels that no stored pod owns, and reports the node's capacity and
// runtime. It owns nothing in the store: it only reads objects and enqueues reports.
// Like everything under edge/, it must not import client-go or controller-runtime.
package edged
