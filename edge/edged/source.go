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

package edged

import (
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Source is what Edged reads the desired state from: the pods bound to the node and the objects
// their volumes and environment refer to.
type Source interface {
	// Pods returns every pod bound to this node. A pod the source cannot decode is left out.
	Pods() ([]*v1.Pod, error)
	// ConfigMap returns a ConfigMap and whether it exists.
	ConfigMap(namespace, name string) (*v1.ConfigMap, bool, error)
	// Secret returns a Secret and whether it exists.
	Secret(namespace, name string) (*v1.Secret, bool, error)
	// ServiceAccountToken returns the token for the pod namespace/podName and whether there is
	// one.
	ServiceAccountToken(namespace, podName string) (*wire.ServiceAccountToken, bool, error)
}

// StatusSink is where Edged puts what it reports to the cloud.
type StatusSink interface {
	// PodStatus reports a pod's status; only the latest per pod matters.
	PodStatus(namespace, name string, report wire.PodStatusReport) error
	// NodeStatus reports the node's status; only the latest matters.
	NodeStatus(node string, report wire.NodeStatusReport) error
}

// StoreSource reads the objects the cloud sent from the edge's store.
type StoreSource struct {
	Store *meta.Store
	// OnInvalid, if set, learns of a stored pod whose body cannot be decoded.
	OnInvalid func(ref wire.ObjectRef, err error)
}

// Pods implements Source.
func (s StoreSource) Pods() ([]*v1.Pod, error) {
	objs, err := s.Store.ObjectsOfKind(wire.KindPod)
	if err != nil {
		return nil, err
	}
	pods := make([]*v1.Pod, 0, len(objs))
	for _, o := range objs {
		pod := &v1.Pod{}
		if err := json.Unmarshal(o.Body, pod); err != nil {
			if s.OnInvalid != nil {
				s.OnInvalid(o.Ref, err)
			}
			continue
		}
		// The ref is authoritative for where the pod lives.
		pod.Namespace, pod.Name = o.Ref.Namespace, o.Ref.Name
		pods = append(pods, pod)
	}
	return pods, nil
}

// ConfigMap implements Source.
func (s StoreSource) ConfigMap(namespace, name string) (*v1.ConfigMap, bool, error) {
	cm := &v1.ConfigMap{}
	ok, err := s.get(wire.KindConfigMap, namespace, name, cm)
	return cm, ok, err
}

// Secret implements Source.
func (s StoreSource) Secret(namespace, name string) (*v1.Secret, bool, error) {
	sec := &v1.Secret{}
	ok, err := s.get(wire.KindSecret, namespace, name, sec)
	return sec, ok, err
}

// ServiceAccountToken implements Source.
func (s StoreSource) ServiceAccountToken(namespace, podName string) (*wire.ServiceAccountToken, bool, error) {
	tok := &wire.ServiceAccountToken{}
	ok, err := s.get(wire.KindServiceAccountToken, namespace, podName, tok)
	return tok, ok, err
}

func (s StoreSource) get(kind wire.Kind, namespace, name string, into any) (bool, error) {
	ref := wire.ObjectRef{Kind: kind, Namespace: namespace, Name: name}
	o, ok, err := s.Store.GetObject(ref)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(o.Body, into); err != nil {
		return false, fmt.Errorf("decoding %s: %w", ref.Key(), err)
	}
	return true, nil
}

// StoreSink puts Edged's reports in the store's outbox, one pending report per pod and one for
// the node (latest wins), and calls Notify so EdgeHub sends them.
type StoreSink struct {
	Store  *meta.Store
	Notify func()
}

// PodStatus implements StatusSink.
func (s StoreSink) PodStatus(namespace, name string, report wire.PodStatusReport) error {
	return s.enqueue(wire.ReportKindPodStatus, namespace, name, report)
}

// NodeStatus implements StatusSink.
func (s StoreSink) NodeStatus(node string, report wire.NodeStatusReport) error {
	return s.enqueue(wire.ReportKindNodeStatus, "", node, report)
}

func (s StoreSink) enqueue(kind, namespace, name string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if _, err := s.Store.Enqueue(kind, namespace, name, "", raw); err != nil {
		return err
	}
	if s.Notify != nil {
		s.Notify()
	}
	return nil
}
