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

// Package wire is the cloud–edge protocol: the messages CloudHub and EdgeHub exchange over one
// websocket per node, and their JSON codec. Both sides import it; it imports nothing heavier than
// the standard library, so edgecore stays small.
//
// The protocol in short (docs/architecture.md has the full picture):
//   - the edge opens with a Hello carrying its protocol version, its agent's description and the
//     content version of every object it holds; the cloud answers Welcome (or Refused, then closes),
//     then the difference as Upserts and Deletes, then Synced, then streams changes;
//   - cloud to edge is level-based: an Upsert carries the whole latest content of an object; the edge
//     stores it and answers an Ack naming the object and the version it stored;
//   - edge to cloud is at-least-once: Reports carry a per-node sequence number; the cloud answers
//     an Ack with the highest sequence it has applied (cumulative), and ignores older ones.
//
// Every decoded message has passed Validate: unknown message types, unknown object kinds, unknown
// fields, oversize frames, trailing data and malformed JSON are errors, never panics.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ProtocolVersion is the version this build speaks. A cloud accepts this version and the one
// before it (see Accepts); an edge speaks exactly this one.
//
// Version 2 added the workload kinds (Pod, ConfigMap, Secret, ServiceAccountToken) and the
// PodStatus and NodeStatus reports; a cloud sends those kinds only to edges that speak 2
// (KindSince).
const ProtocolVersion = 2

// KindSince is the protocol version that introduced each kind; a cloud never sends a kind to an
// edge that speaks an older version.
func KindSince(k Kind) int {
	if k == KindDevice {
		return 1
	}
	return 2
}

// Accepts reports whether a cloud of this build accepts an edge that speaks version v: the
// current version and the previous one, so edges can be upgraded after the cloud.
func Accepts(v int) bool {
	return v == ProtocolVersion || (v == ProtocolVersion-1 && v >= 1)
}

// MaxFrameSize is the largest message either side accepts, in bytes. A Hello from a node holding
// ten thousand objects is about 1 MiB; objects are bounded by the API server's own limits.
const MaxFrameSize = 4 << 20

// Type is the type of a message.
type Type string

// The message types.
const (
	// TypeHello (edge → cloud) opens a session.
	TypeHello Type = "hello"
	// TypeWelcome (cloud → edge) accepts the Hello.
	TypeWelcome Type = "welcome"
	// TypeRefused (cloud → edge) refuses the Hello; the cloud closes the connection after it.
	TypeRefused Type = "refused"
	// TypeUpsert (cloud → edge) carries the latest content of one object.
	TypeUpsert Type = "upsert"
	// TypeDelete (cloud → edge) removes one object from the edge.
	TypeDelete Type = "delete"
	// TypeSynced (cloud → edge) ends the answer to the Hello: the edge now holds the cloud's state.
	TypeSynced Type = "synced"
	// TypeAck acknowledges: from the edge, an object version it stored or deleted; from the
	// cloud, every report up to a sequence number.
	TypeAck Type = "ack"
	// TypeReport (edge → cloud) carries reports from the edge's outbox.
	TypeReport Type = "report"
)

// Kind is the kind of an object sent to the edge.
type Kind string

// The object kinds the cloud sends. A kind is added here when a component plugs it into the hub.
const (
	// KindDevice is a Device with its model's properties merged in.
	KindDevice Kind = "Device"
	// KindPod is a Pod bound to the node: body a core/v1 Pod (metadata and spec, no status).
	KindPod Kind = "Pod"
	// KindConfigMap is a ConfigMap a Pod on the node uses: body a core/v1 ConfigMap.
	KindConfigMap Kind = "ConfigMap"
	// KindSecret is a Secret a Pod on the node uses: body a core/v1 Secret.
	KindSecret Kind = "Secret"
	// KindServiceAccountToken is the token for one Pod's projected service account volume,
	// named after the Pod: body ServiceAccountToken.
	KindServiceAccountToken Kind = "ServiceAccountToken"
)

var knownKinds = map[Kind]bool{
	KindDevice: true, KindPod: true, KindConfigMap: true, KindSecret: true, KindServiceAccountToken: true,
}

// KnownKind reports whether k is an object kind of this protocol version.
func KnownKind(k Kind) bool { return knownKinds[k] }

// ObjectRef names one object and, where it matters, the content version of it.
type ObjectRef struct {
	// Kind is the object's kind.
	Kind Kind `json:"kind"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
	// Version is a hash of the content the cloud sent, not a resourceVersion: a status-only
	// change does not change it.
	Version string `json:"version,omitempty"`
}

// Key returns "kind/namespace/name", a map key that ignores the version.
func (r ObjectRef) Key() string { return string(r.Kind) + "/" + r.Namespace + "/" + r.Name }

// String names the object for logs and errors.
func (r ObjectRef) String() string {
	if r.Version == "" {
		return r.Key()
	}
	return r.Key() + "@" + r.Version
}

// Message is one websocket message. Exactly the fields of its Type are set.
type Message struct {
	// ID identifies the message for logs and, for upserts and deletes, for the edge's ack.
	ID string `json:"id"`
	// Type says which of the fields below are set.
	Type Type `json:"type"`

	// Hello is set on TypeHello.
	Hello *Hello `json:"hello,omitempty"`
	// Welcome is set on TypeWelcome.
	Welcome *Welcome `json:"welcome,omitempty"`
	// Refused is set on TypeRefused.
	Refused *Refused `json:"refused,omitempty"`
	// Object is set on TypeUpsert, TypeDelete and on an edge's TypeAck.
	Object *ObjectRef `json:"object,omitempty"`
	// Body is the object's content on TypeUpsert, as JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// Seq is set on a cloud's TypeAck: every report with a sequence up to Seq is applied.
	Seq uint64 `json:"seq,omitempty"`
	// Reports is set on TypeReport.
	Reports []Report `json:"reports,omitempty"`
}

// Hello opens a session.
type Hello struct {
	// ProtocolVersion is the version the edge speaks.
	ProtocolVersion int `json:"protocolVersion"`
	// Agent describes the edge agent and its machine.
	Agent AgentInfo `json:"agent"`
	// Objects lists every object the edge holds, with its version.
	Objects []ObjectRef `json:"objects,omitempty"`
}

// AgentInfo describes an edge agent and its machine.
type AgentInfo struct {
	// Version is edgecore's version.
	Version string `json:"version"`
	// OS and Arch are as Go names them.
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// KernelVersion is the running kernel's release.
	KernelVersion string `json:"kernelVersion,omitempty"`
	// Addresses are the machine's IP addresses.
	Addresses []string `json:"addresses,omitempty"`
}

// Welcome accepts a Hello.
type Welcome struct {
	// ProtocolVersion is the version the cloud will speak on this session.
	ProtocolVersion int `json:"protocolVersion"`
	// NodeName is the node the cloud identified from the client certificate.
	NodeName string `json:"nodeName"`
	// AckedSeq is the highest report sequence the cloud has applied for this node, so the edge
	// can drop what it still holds up to there without sending it again.
	AckedSeq uint64 `json:"ackedSeq,omitempty"`
}

// Refused says why the cloud refused a Hello.
type Refused struct {
	// Reason is a CamelCase word, for example "ProtocolVersionRefused".
	Reason string `json:"reason"`
	// Message says what is wrong, for people.
	Message string `json:"message"`
}

// Report is one entry of the edge's outbox.
type Report struct {
	// Seq is the per-node sequence number; it only grows.
	Seq uint64 `json:"seq"`
	// Kind says what is reported, for example "DeviceTwin"; the consumer of that kind decodes Body.
	Kind string `json:"kind"`
	// Namespace and Name name the object the report is about.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Body is the report's content.
	Body json.RawMessage `json:"body"`
}

// Errors a caller may branch on.
var (
	// ErrTooLarge is returned for a frame over MaxFrameSize.
	ErrTooLarge = errors.New("message too large")
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("invalid message")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Field names, for the rule that a message sets exactly the fields of its type.
const (
	fieldHello   = "hello"
	fieldWelcome = "welcome"
	fieldRefused = "refused"
	fieldObject  = "object"
	fieldBody    = "body"
	fieldSeq     = "seq"
	fieldReports = "reports"
)

// rules are, per message type, the fields it may set and the check of their content.
var rules = map[Type]struct {
	fields []string
	check  func(*Message) error
}{
	TypeHello:   {[]string{fieldHello}, checkHello},
	TypeWelcome: {[]string{fieldWelcome}, checkWelcome},
	TypeRefused: {[]string{fieldRefused}, checkRefused},
	TypeUpsert:  {[]string{fieldObject, fieldBody}, checkUpsert},
	TypeDelete:  {[]string{fieldObject}, checkDelete},
	TypeSynced:  {nil, func(*Message) error { return nil }},
	TypeAck:     {[]string{fieldObject, fieldSeq}, checkAck},
	TypeReport:  {[]string{fieldReports}, checkReport},
}

// Validate checks that the message is well formed for its type: the right fields set, the
// others not, known kinds, non-empty names.
func (m *Message) Validate() error {
	if m.ID == "" {
		return invalid("no id")
	}
	rule, ok := rules[m.Type]
	if !ok {
		return invalid("unknown message type %q", m.Type)
	}
	set := map[string]bool{
		fieldHello: m.Hello != nil, fieldWelcome: m.Welcome != nil, fieldRefused: m.Refused != nil,
		fieldObject: m.Object != nil, fieldBody: len(m.Body) > 0, fieldSeq: m.Seq != 0, fieldReports: len(m.Reports) > 0,
	}
	for field, isSet := range set {
		if isSet && !slices.Contains(rule.fields, field) {
			return invalid("%s %s must not set %s", m.Type, m.ID, field)
		}
	}
	return rule.check(m)
}

func checkHello(m *Message) error {
	if m.Hello == nil {
		return invalid("hello %s has no hello field", m.ID)
	}
	if m.Hello.ProtocolVersion < 1 {
		return invalid("hello %s has protocol version %d", m.ID, m.Hello.ProtocolVersion)
	}
	for _, o := range m.Hello.Objects {
		if err := o.validate(true); err != nil {
			return invalid("hello %s: %v", m.ID, err)
		}
	}
	return nil
}

func checkWelcome(m *Message) error {
	if m.Welcome == nil || m.Welcome.NodeName == "" {
		return invalid("welcome %s has no node name", m.ID)
	}
	return nil
}

func checkRefused(m *Message) error {
	if m.Refused == nil || m.Refused.Reason == "" {
		return invalid("refused %s has no reason", m.ID)
	}
	return nil
}

func checkUpsert(m *Message) error {
	if m.Object == nil || len(m.Body) == 0 {
		return invalid("upsert %s needs an object and a body", m.ID)
	}
	if err := m.Object.validate(true); err != nil {
		return invalid("upsert %s: %v", m.ID, err)
	}
	if !json.Valid(m.Body) || !bytes.HasPrefix(bytes.TrimSpace(m.Body), []byte("{")) {
		return invalid("upsert %s: the body is not a JSON object", m.ID)
	}
	return nil
}

func checkDelete(m *Message) error {
	if m.Object == nil {
		return invalid("delete %s has no object", m.ID)
	}
	if err := m.Object.validate(false); err != nil {
		return invalid("delete %s: %v", m.ID, err)
	}
	return nil
}

func checkAck(m *Message) error {
	if (m.Object == nil) == (m.Seq == 0) {
		return invalid("ack %s must name either an object or a sequence", m.ID)
	}
	if m.Object != nil {
		if err := m.Object.validate(false); err != nil {
			return invalid("ack %s: %v", m.ID, err)
		}
	}
	return nil
}

func checkReport(m *Message) error {
	if len(m.Reports) == 0 {
		return invalid("report %s carries no reports", m.ID)
	}
	for i := range m.Reports {
		if err := m.Reports[i].validate(); err != nil {
			return invalid("report %s: %v", m.ID, err)
		}
	}
	return nil
}

func (r *ObjectRef) validate(needVersion bool) error {
	switch {
	case !KnownKind(r.Kind):
		return fmt.Errorf("unknown object kind %q", r.Kind)
	case r.Name == "":
		return fmt.Errorf("object of kind %s has no name", r.Kind)
	case needVersion && r.Version == "":
		return fmt.Errorf("object %s has no version", r.Key())
	case strings.ContainsAny(r.Namespace+r.Name, "/\x00"):
		return fmt.Errorf("object %q has a malformed name", r.Key())
	}
	return nil
}

func (r *Report) validate() error {
	switch {
	case r.Seq == 0:
		return errors.New("a report has sequence 0")
	case r.Kind == "":
		return fmt.Errorf("report %d has no kind", r.Seq)
	case r.Name == "":
		return fmt.Errorf("report %d has no name", r.Seq)
	case len(r.Body) == 0 || !json.Valid(r.Body):
		return fmt.Errorf("report %d has no valid JSON body", r.Seq)
	}
	return nil
}

// Encode validates a message and returns its JSON.
func Encode(m *Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", m.Type, m.ID, err)
	}
	if len(data) > MaxFrameSize {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, the limit is %d", ErrTooLarge, m.Type, m.ID, len(data), MaxFrameSize)
	}
	return data, nil
}

// Decode parses and validates one message. It refuses frames over MaxFrameSize, unknown fields,
// trailing data after the JSON value, and anything Validate refuses.
func Decode(data []byte) (*Message, error) {
	if len(data) > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxFrameSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	m := &Message{}
	if err := dec.Decode(m); err != nil {
		return nil, invalid("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("trailing data after the message")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
