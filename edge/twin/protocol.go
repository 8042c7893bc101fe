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

package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// MaxPayloadSize is the largest MQTT payload DeviceTwin parses, in bytes. A twin update of a
// hundred properties with long values fits many times over; anything bigger is refused unread,
// so a broken mapper cannot make the edge allocate without bound.
const MaxPayloadSize = 64 << 10

// The topics, KubeEdge's device-twin protocol. A device is named by two levels, its namespace
// and its name; results go to the request's topic with "/result" appended.
const (
	devicePrefix = "$hw/events/device/"
	nodePrefix   = "$hw/events/node/"

	// OpTwinUpdate (mapper → edge) reports actual values.
	OpTwinUpdate = "twin/update"
	// OpTwinUpdateResult (edge → mapper) answers OpTwinUpdate.
	OpTwinUpdateResult = "twin/update/result"
	// OpTwinUpdateDelta (edge → mapper) lists desired values that differ from the reported ones.
	OpTwinUpdateDelta = "twin/update/delta"
	// OpTwinUpdateDocument (edge → mapper) shows the twins an accepted update changed, before
	// and after.
	OpTwinUpdateDocument = "twin/update/document"
	// OpTwinGet (mapper → edge) asks for the device's twins.
	OpTwinGet = "twin/get"
	// OpTwinGetResult (edge → mapper) answers OpTwinGet.
	OpTwinGetResult = "twin/get/result"
	// OpStateUpdate (mapper → edge) reports the device's state.
	OpStateUpdate = "state/update"
	// OpStateUpdateResult (edge → mapper) answers OpStateUpdate.
	OpStateUpdateResult = "state/update/result"

	// OpMembershipGet (mapper → edge) asks for the devices of the node.
	OpMembershipGet = "membership/get"
	// OpMembershipGetResult (edge → mapper) answers OpMembershipGet.
	OpMembershipGetResult = "membership/get/result"
	// OpMembershipUpdated (edge → mapper) announces devices added to or removed from the node.
	OpMembershipUpdated = "membership/updated"
)

// DeviceTopic returns the topic of op for the device namespace/name.
func DeviceTopic(namespace, name, op string) string {
	return devicePrefix + namespace + "/" + name + "/" + op
}

// NodeTopic returns the topic of op for the node.
func NodeTopic(node, op string) string { return nodePrefix + node + "/" + op }

// ParseDeviceTopic splits a device topic into the device's namespace and name and the
// operation. ok is false for any other topic, and for device levels that are empty or wildcards.
func ParseDeviceTopic(topic string) (namespace, name, op string, ok bool) {
	rest, found := strings.CutPrefix(topic, devicePrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || !validLevel(parts[0]) || !validLevel(parts[1]) || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func validLevel(s string) bool { return s != "" && !strings.ContainsAny(s, "+#") }

// The errors a request can end in. Each maps to the result code a mapper sees (see Code); the
// reason in the result is the error's text.
var (
	// ErrBadRequest (400): the payload is not what the topic expects, or a value does not fit
	// the device's model.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownDevice (404): no device of that name is on this node.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrDesiredFromSpec (409): the mapper tried to set a desired (expected) value.
	ErrDesiredFromSpec = errors.New("desired values come from the Device spec, a mapper reports actual values only")
	// ErrInternal (500): the edge could not store the report; nothing changed, and a retry may
	// succeed.
	ErrInternal = errors.New("internal error")
)

// The result codes.
const (
	CodeBadRequest = 400
	CodeNotFound   = 404
	CodeConflict   = 409
	CodeInternal   = 500
)

// Code returns the result code for err: 0 for nil, 500 for an error of no known kind.
func Code(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrBadRequest):
		return CodeBadRequest
	case errors.Is(err, ErrUnknownDevice):
		return CodeNotFound
	case errors.Is(err, ErrDesiredFromSpec):
		return CodeConflict
	default:
		return CodeInternal
	}
}

// BaseMessage is the part every payload has.
type BaseMessage struct {
	// EventID identifies a request; its result echoes it.
	EventID string `json:"event_id"`
	// Timestamp is when the message was made, in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
}

// ValueMetadata is the metadata of one value.
type ValueMetadata struct {
	// Timestamp is when the value was set, in milliseconds; in what the edge sends it is on the
	// edge's clock.
	Timestamp int64 `json:"timestamp,omitempty"`
}

// Value is an expected (desired) or actual (reported) value.
type Value struct {
	// Value is the value as a string, whatever the property's type.
	Value *string `json:"value,omitempty"`
	// Metadata says when it was set.
	Metadata *ValueMetadata `json:"metadata,omitempty"`
}

// TypeMetadata is the metadata of a twin.
type TypeMetadata struct {
	// Type is the property's type in the model (int, float, double, string, boolean, bytes).
	Type string `json:"type,omitempty"`
}

// Version is KubeEdge's version pair. The edge accepts it from mappers and ignores it: its
// versions are content versions of the device (the "version" fields of results and deltas).
type Version struct {
	Cloud int64 `json:"cloud"`
	Edge  int64 `json:"edge"`
}

// MsgTwin is one property's twin.
type MsgTwin struct {
	// Expected is the desired value. Mappers must not set it (409).
	Expected *Value `json:"expected,omitempty"`
	// Actual is the reported value.
	Actual *Value `json:"actual,omitempty"`
	// Optional, ExpectedVersion and ActualVersion are accepted from mappers and ignored.
	Optional        *bool    `json:"optional,omitempty"`
	ExpectedVersion *Version `json:"expected_version,omitempty"`
	ActualVersion   *Version `json:"actual_version,omitempty"`
	// Metadata gives the property's type.
	Metadata *TypeMetadata `json:"metadata,omitempty"`
}

// Update is the payload of OpTwinUpdate.
type Update struct {
	BaseMessage
	// Twin maps property names to the reported values.
	Twin map[string]*MsgTwin `json:"twin"`
}

// Result is the payload of OpTwinUpdateResult and OpTwinGetResult.
type Result struct {
	BaseMessage
	// Code and Reason are set on errors.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Version is the device's content version the twins belong to.
	Version string `json:"version,omitempty"`
	// Twin is, for twin/get, every twin of the device; for twin/update, the twins accepted.
	Twin map[string]*MsgTwin `json:"twin,omitempty"`
}

// Delta is the payload of OpTwinUpdateDelta.
type Delta struct {
	BaseMessage
	// Version is the device's content version the desired values come from.
	Version string `json:"version,omitempty"`
	// Twin is every twin of the device.
	Twin map[string]*MsgTwin `json:"twin"`
	// Delta maps each property whose desired value differs from the reported one (or has none
	// reported) to the desired value.
	Delta map[string]string `json:"delta"`
}

// Doc is the before and after of one twin.
type Doc struct {
	Last    *MsgTwin `json:"last"`
	Current *MsgTwin `json:"current"`
}

// Document is the payload of OpTwinUpdateDocument.
type Document struct {
	BaseMessage
	Twin map[string]*Doc `json:"twin"`
}

// StateUpdate is the payload of OpStateUpdate.
type StateUpdate struct {
	BaseMessage
	// State is one of online, offline, ok, unknown, unhealthy.
	State string `json:"state"`
}

// DeviceStatus is a device's state in a state/update result.
type DeviceStatus struct {
	Name  string `json:"name"`
	State string `json:"state,omitempty"`
}

// StateResult is the payload of OpStateUpdateResult.
type StateResult struct {
	BaseMessage
	Code   int           `json:"code,omitempty"`
	Reason string        `json:"reason,omitempty"`
	Device *DeviceStatus `json:"device,omitempty"`
}

// Request is the payload of OpTwinGet and OpMembershipGet.
type Request struct {
	BaseMessage
}

// MembershipDevice is one device in membership messages.
type MembershipDevice struct {
	// ID is "<namespace>/<name>", the two topic levels that name the device.
	ID string `json:"id"`
	// Name is the device's name.
	Name string `json:"name"`
	// Namespace is the device's namespace.
	Namespace string `json:"namespace"`
	// Model and Protocol say which model the device follows and which mapper drives it.
	Model    string `json:"model,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// State is the state last reported, if any.
	State string `json:"state,omitempty"`
	// Twin is the device's twins (in membership/get results and for added devices).
	Twin map[string]*MsgTwin `json:"twin,omitempty"`
}

// MembershipResult is the payload of OpMembershipGetResult.
type MembershipResult struct {
	BaseMessage
	Code    int                `json:"code,omitempty"`
	Reason  string             `json:"reason,omitempty"`
	Devices []MembershipDevice `json:"devices"`
}

// MembershipUpdated is the payload of OpMembershipUpdated. A device re-created under the same
// name appears in both lists: apply the removals first.
type MembershipUpdated struct {
	BaseMessage
	Added   []MembershipDevice `json:"added_devices"`
	Removed []MembershipDevice `json:"removed_devices"`
}

// propertyName is the pattern of property names in the API (DeviceModel's schema).
var propertyName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,62}$`)

// ParseUpdate parses and checks a twin/update payload: a JSON object with known fields only,
// at least one twin, valid property names, an actual value for each and no expected value. It
// does not check values against a model; that needs the device (DeviceTwin does it).
func ParseUpdate(payload []byte) (*Update, error) {
	var u Update
	if err := decode(payload, &u); err != nil {
		return nil, err
	}
	if len(u.Twin) == 0 {
		return nil, fmt.Errorf("%w: the update has no twin", ErrBadRequest)
	}
	var expected []string
	for name, t := range u.Twin {
		if !propertyName.MatchString(name) {
			return nil, fmt.Errorf("%w: %q is not a property name", ErrBadRequest, name)
		}
		if t == nil {
			return nil, fmt.Errorf("%w: property %q: the twin is null", ErrBadRequest, name)
		}
		if t.Expected != nil {
			expected = append(expected, name)
		}
	}
	if len(expected) > 0 {
		return nil, fmt.Errorf("%w (the update sets expected for %s)", ErrDesiredFromSpec, quoteSorted(expected))
	}
	for name, t := range u.Twin {
		if t.Actual == nil || t.Actual.Value == nil {
			return nil, fmt.Errorf("%w: property %q has no actual value", ErrBadRequest, name)
		}
	}
	return &u, nil
}

// ParseStateUpdate parses and checks a state/update payload.
func ParseStateUpdate(payload []byte) (*StateUpdate, error) {
	var u StateUpdate
	if err := decode(payload, &u); err != nil {
		return nil, err
	}
	if !wire.KnownDeviceState(u.State) {
		return nil, fmt.Errorf("%w: state %q is not one of online, offline, ok, unknown, unhealthy", ErrBadRequest, u.State)
	}
	return &u, nil
}

// ParseRequest parses a twin/get or membership/get payload.
func ParseRequest(payload []byte) (*Request, error) {
	var r Request
	if err := decode(payload, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// EventID returns the event_id of a payload that failed to parse, when one can be read, so that
// the error result can echo it.
func EventID(payload []byte) string {
	if len(payload) > MaxPayloadSize {
		return ""
	}
	var b struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(payload, &b) != nil {
		return ""
	}
	return b.EventID
}

// decode reads one JSON object into v: unknown fields, trailing data and oversize payloads are
// errors, so that a payload meant for another topic or another protocol is not half understood.
func decode(payload []byte, v any) error {
	if len(payload) > MaxPayloadSize {
		return fmt.Errorf("%w: the payload is %d bytes, the limit is %d", ErrBadRequest, len(payload), MaxPayloadSize)
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: the payload is not a JSON object", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the JSON object", ErrBadRequest)
	}
	return nil
}

// jsonError rewords encoding/json's errors for a mapper author: which field has which problem.
func jsonError(err error) error {
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("field %q must be %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

func quoteSorted(names []string) string {
	slices.Sort(names)
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
