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

package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The topics of docs/mqtt.md. A device is named by two topic levels, its namespace and its name.
const (
	devicePrefix = "$hw/events/device/"
	nodePrefix   = "$hw/events/node/"

	opTwinUpdate          = "twin/update"
	opTwinUpdateResult    = "twin/update/result"
	opTwinUpdateDelta     = "twin/update/delta"
	opStateUpdate         = "state/update"
	opStateUpdateResult   = "state/update/result"
	opMembershipGet       = "membership/get"
	opMembershipGetResult = "membership/get/result"
	opMembershipUpdated   = "membership/updated"
)

// deviceTopic is the topic of op for the device namespace/name.
func deviceTopic(namespace, name, op string) string {
	return devicePrefix + namespace + "/" + name + "/" + op
}

// nodeTopic is the topic of op for the node.
func nodeTopic(node, op string) string { return nodePrefix + node + "/" + op }

// subscriptions are the filters the simulator listens on for node: the node's membership topics
// and, for every device, the deltas and the results of what the simulator sends.
func subscriptions(node string) []string {
	return []string{
		nodeTopic(node, opMembershipGetResult),
		nodeTopic(node, opMembershipUpdated),
		deviceTopic("+", "+", opTwinUpdateDelta),
		deviceTopic("+", "+", opTwinUpdateResult),
		deviceTopic("+", "+", opStateUpdateResult),
	}
}

// parseDeviceTopic splits a device topic into namespace, name and operation.
func parseDeviceTopic(topic string) (namespace, name, op string, ok bool) {
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

// validLevel says whether s can be one topic level the simulator publishes to: not empty, no
// separator, no wildcard (a publish to a wildcard topic is a protocol error that would cost the
// connection).
func validLevel(s string) bool { return s != "" && !strings.ContainsAny(s, "/+#\x00") }

// propertyName is the pattern of the model's property names. A delta naming anything else is
// not from the edge, and reporting it back would only earn a 400.
var propertyName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,62}$`)

// value is an expected or actual value. Values are strings, whatever the property's type.
type value struct {
	Value    *string        `json:"value,omitempty"`
	Metadata *valueMetadata `json:"metadata,omitempty"`
}

type valueMetadata struct {
	Timestamp int64 `json:"timestamp,omitempty"`
}

// typeMetadata is a twin's metadata. Minimum and Maximum are not in the documented protocol
// (edgecore does not send them); they are read if an edge ever does, so that a thermostat stays
// within them.
type typeMetadata struct {
	Type    string  `json:"type,omitempty"`
	Minimum *string `json:"minimum,omitempty"`
	Maximum *string `json:"maximum,omitempty"`
}

// msgTwin is one property's twin. Decoding is lenient: a mapper must keep working when the
// edge adds a field, so unknown fields are ignored, but the fields read must have their type.
type msgTwin struct {
	Expected *value        `json:"expected,omitempty"`
	Actual   *value        `json:"actual,omitempty"`
	Metadata *typeMetadata `json:"metadata,omitempty"`
}

type baseMessage struct {
	EventID   string `json:"event_id"`
	Timestamp int64  `json:"timestamp"`
}

// result is a twin/update, state/update or membership/get result; only its error matters here.
type result struct {
	baseMessage
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type delta struct {
	baseMessage
	Twin  map[string]*msgTwin `json:"twin"`
	Delta map[string]string   `json:"delta"`
}

type membershipDevice struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Namespace string              `json:"namespace"`
	Model     string              `json:"model,omitempty"`
	Protocol  string              `json:"protocol,omitempty"`
	Twin      map[string]*msgTwin `json:"twin,omitempty"`
}

type membershipResult struct {
	result
	Devices []membershipDevice `json:"devices"`
}

type membershipUpdated struct {
	baseMessage
	Added   []membershipDevice `json:"added_devices"`
	Removed []membershipDevice `json:"removed_devices"`
}

// What the simulator sends. They are written with exactly the fields edgecore accepts from a
// mapper, which refuses unknown ones.

type reportTwin struct {
	Actual   reportValue   `json:"actual"`
	Metadata *reportedType `json:"metadata,omitempty"`
}

type reportValue struct {
	Value    string        `json:"value"`
	Metadata valueMetadata `json:"metadata"`
}

type reportedType struct {
	Type string `json:"type"`
}

type twinUpdate struct {
	baseMessage
	Twin map[string]reportTwin `json:"twin"`
}

type stateUpdate struct {
	baseMessage
	State string `json:"state"`
}

// errGarbage marks a payload the simulator cannot read; it is logged and dropped.
var errGarbage = errors.New("unreadable payload")

// decode reads a JSON object into v. It is strict about what would make the simulator
// misunderstand a message (not an object, a field of the wrong type, data after the object) and
// lenient about fields it does not know.
func decode(payload []byte, v any) error {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", errGarbage)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errGarbage, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the JSON object", errGarbage)
	}
	return nil
}

// checkMember checks a membership entry names a device the simulator can publish for, and
// fills the id or the two levels from each other when only one side is given.
func checkMember(m *membershipDevice) error {
	if m.Namespace == "" && m.Name == "" {
		ns, name, ok := strings.Cut(m.ID, "/")
		if !ok {
			return fmt.Errorf("%w: device id %q is not namespace/name", errGarbage, m.ID)
		}
		m.Namespace, m.Name = ns, name
	}
	if !validLevel(m.Namespace) || !validLevel(m.Name) {
		return fmt.Errorf("%w: device %q/%q cannot name a topic", errGarbage, m.Namespace, m.Name)
	}
	id := m.Namespace + "/" + m.Name
	if m.ID == "" {
		m.ID = id
	}
	if m.ID != id {
		return fmt.Errorf("%w: device id %q does not match namespace %q and name %q", errGarbage, m.ID, m.Namespace, m.Name)
	}
	return nil
}
