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

package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Object is one object as a node should hold it: its reference (with the content version) and
// the body the edge receives.
type Object struct {
	Ref  wire.ObjectRef
	Body []byte
}

// NewObject marshals body and versions it by the hash of exactly those bytes, so the version
// changes if and only if what the edge receives changes (a status-only change never does).
func NewObject(kind wire.Kind, namespace, name string, body any) (Object, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Object{}, fmt.Errorf("encoding %s %s/%s: %w", kind, namespace, name, err)
	}
	sum := sha256.Sum256(raw)
	return Object{
		Ref:  wire.ObjectRef{Kind: kind, Namespace: namespace, Name: name, Version: hex.EncodeToString(sum[:16])},
		Body: raw,
	}, nil
}

// Projection is the part of one kind's content that nodes hold: "the objects node N should
// hold, with their content versions". A component (devices, later workloads) implements it and
// calls Hub.Changed when something it projects may have changed for a node.
type Projection interface {
	// Kind is the wire kind of the objects this projection produces.
	Kind() wire.Kind
	// List returns every object of this kind that the node should hold.
	List(ctx context.Context, node string) ([]Object, error)
	// Get returns the object the node should hold under ref's namespace and name, or false
	// when the node should not hold it (it does not exist or belongs to another node).
	Get(ctx context.Context, node string, ref wire.ObjectRef) (Object, bool, error)
}

// StatusSink learns of sessions opening and closing, so that EdgeNode status can follow.
// Calls come from connection goroutines and must not block on the API server.
type StatusSink interface {
	// Connected is called when a node's session is accepted, with the agent's description
	// and the protocol version the session speaks.
	Connected(node string, agent wire.AgentInfo, protocolVersion int)
	// Disconnected is called when a node's session ends and no newer session replaced it.
	Disconnected(node string, reason string)
	// Refused is called when a node that proved its identity was refused, with why.
	Refused(node string, reason, message string)
}

// ReportSink applies reports from the edge. Apply must be idempotent and ignore reports older
// than what it already took; it returns the highest sequence already applied, so the hub can
// acknowledge it at once. Reports applied later (a status write that waits for its turn under the
// write budget) are acknowledged through Hub.Applied: the edge keeps a report until then, so a
// report taken but not yet written is never lost when cloudcore dies.
type ReportSink interface {
	Apply(ctx context.Context, node string, reports []wire.Report) (uint64, error)
}

// Authorizer turns a verified client certificate's identity into a node name, checking that the
// node still exists and that the certificate was issued for this incarnation of it.
type Authorizer interface {
	Authorize(ctx context.Context, nodeName, nodeUID string) error
}
