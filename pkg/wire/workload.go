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

package wire

import (
	"encoding/json"
	"time"
)

// The report kinds Edged puts in the outbox.
const (
	// ReportKindPodStatus is the status of one Pod on the node: body a core/v1 PodStatus plus the
	// Pod's UID (PodStatusReport), one pending report per Pod.
	ReportKindPodStatus = "PodStatus"
	// ReportKindNodeStatus is what the node says about itself: body NodeStatusReport, one pending
	// report per node.
	ReportKindNodeStatus = "NodeStatus"
)

// ServiceAccountToken is the body of a KindServiceAccountToken object: a token the cloud
// requested through the TokenRequest API for one Pod's service account, bound to that Pod.
// The cloud renews it before it expires; the edge keeps the last one, so a Pod restarted while
// the cloud is unreachable still gets a token that is valid until ExpirationTimestamp.
type ServiceAccountToken struct {
	// PodUID is the UID of the Pod the token is bound to.
	PodUID string `json:"podUID"`
	// ServiceAccount is the service account's name.
	ServiceAccount string `json:"serviceAccount"`
	// Audiences the token was issued for; empty means the API server's default.
	Audiences []string `json:"audiences,omitempty"`
	// Token is the signed JWT.
	Token string `json:"token"`
	// ExpirationTimestamp is when the token stops being valid.
	ExpirationTimestamp time.Time `json:"expirationTimestamp"`
}

// PodStatusReport is the body of a ReportKindPodStatus report.
type PodStatusReport struct {
	// UID is the UID of the Pod the status belongs to, so the cloud never writes a deleted and
	// re-created Pod's status with the old one's.
	UID string `json:"uid"`
	// Status is a core/v1 PodStatus encoded as JSON (kept raw so this package needs no
	// Kubernetes types).
	Status json.RawMessage `json:"status"`
}

// NodeStatusReport is the body of a ReportKindNodeStatus report.
type NodeStatusReport struct {
	// Capacity and Allocatable are resource quantities by name ("cpu", "memory", "pods").
	Capacity    map[string]string `json:"capacity,omitempty"`
	Allocatable map[string]string `json:"allocatable,omitempty"`
	// NodeInfo describes the node (kernel, OS image, container runtime), as core/v1 NodeSystemInfo
	// JSON.
	NodeInfo json.RawMessage `json:"nodeInfo,omitempty"`
	// Addresses are the node's addresses as core/v1 NodeAddress JSON.
	Addresses json.RawMessage `json:"addresses,omitempty"`
}
