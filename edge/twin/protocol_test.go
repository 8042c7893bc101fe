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
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// The mapper fixtures are written from KubeEdge's published message shapes; each must parse, or
// be refused with the code a mapper author would expect.
func TestMapperFixturesParseOrAreRefusedWithTheRightCode(t *testing.T) {
	tests := []struct {
		file  string
		parse func([]byte) error
		code  int
	}{
		{"mapper_twin_update.json", parseUpdate, 0},
		{"mapper_twin_update_expected.json", parseUpdate, CodeConflict},
		{"mapper_twin_update_number.json", parseUpdate, CodeBadRequest},
		{"mapper_twin_update_bad_name.json", parseUpdate, CodeBadRequest},
		{"mapper_twin_update_unknown_field.json", parseUpdate, CodeBadRequest},
		{"mapper_twin_update_no_actual.json", parseUpdate, CodeBadRequest},
		{"mapper_twin_update_empty.json", parseUpdate, CodeBadRequest},
		{"mapper_twin_get.json", parseRequest, 0},
		{"mapper_membership_get.json", parseRequest, 0},
		{"mapper_state_update_online.json", parseState, 0},
		{"mapper_state_update_offline.json", parseState, 0},
		{"mapper_state_update_ok.json", parseState, 0},
		{"mapper_state_update_unknown.json", parseState, 0},
		{"mapper_state_update_unhealthy.json", parseState, 0},
		{"mapper_state_update_bad.json", parseState, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			payload := readFixture(t, tt.file)
			err := tt.parse(payload)
			if got := Code(err); got != tt.code {
				t.Fatalf("code = %d (%v), want %d", got, err, tt.code)
			}
			if err != nil && EventID(payload) == "" {
				t.Errorf("the event_id of a refused fixture cannot be read back for the result")
			}
		})
	}
}

func parseUpdate(b []byte) error  { _, err := ParseUpdate(b); return err }
func parseRequest(b []byte) error { _, err := ParseRequest(b); return err }
func parseState(b []byte) error   { _, err := ParseStateUpdate(b); return err }

func TestAKubeEdgeTwinUpdateKeepsItsValuesAndExtraFields(t *testing.T) {
	u, err := ParseUpdate(readFixture(t, "mapper_twin_update.json"))
	if err != nil {
		t.Fatal(err)
	}
	if u.EventID != "2f6c2f4e-6f1b-4a43-9d3c-7d8c0b8f6a11" || u.Timestamp != 1767225600000 {
		t.Errorf("base = %+v", u.BaseMessage)
	}
	if v := u.Twin["temperature"].Actual.Value; v == nil || *v != "21.5" {
		t.Errorf("temperature = %v, want 21.5", v)
	}
	p := u.Twin["power"]
	if p.Optional == nil || *p.Optional || p.ActualVersion == nil || p.ActualVersion.Edge != 7 {
		t.Errorf("power's optional and versions were not read: %+v", p)
	}
}

// The edge fixtures are the shapes KubeEdge publishes to mappers (with edgetwin's "version"
// added). Decoding them strictly into the types and encoding them back gives the same JSON, so
// the types use KubeEdge's field names and nothing else.
func TestEdgeFixturesRoundTripThroughTheTypes(t *testing.T) {
	tests := []struct {
		file string
		into any
	}{
		{"edge_twin_update_delta.json", &Delta{}},
		{"edge_twin_update_result.json", &Result{}},
		{"edge_twin_update_result_error.json", &Result{}},
		{"edge_twin_update_document.json", &Document{}},
		{"edge_twin_get_result.json", &Result{}},
		{"edge_state_update_result.json", &StateResult{}},
		{"edge_membership_get_result.json", &MembershipResult{}},
		{"edge_membership_updated.json", &MembershipUpdated{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			payload := readFixture(t, tt.file)
			if err := decode(payload, tt.into); err != nil {
				t.Fatalf("decoding strictly: %v", err)
			}
			again, err := json.Marshal(tt.into)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(payload, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("round trip changed the message:\nfixture: %s\nencoded: %s", payload, again)
			}
		})
	}
}

func TestTheErrorFixtureCarriesTheReasonTheEdgeGives(t *testing.T) {
	var r Result
	if err := decode(readFixture(t, "edge_twin_update_result_error.json"), &r); err != nil {
		t.Fatal(err)
	}
	_, err := ParseUpdate(readFixture(t, "mapper_twin_update_expected.json"))
	if r.Reason != err.Error() || r.Code != Code(err) {
		t.Errorf("fixture says %d %q; the parser says %d %q", r.Code, r.Reason, Code(err), err)
	}
}

func TestGarbagePayloadsAreRefusedAsBadRequests(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
	}{
		{"an empty payload is refused", nil},
		{"plain text is refused", []byte("temperature=21")},
		{"a JSON array is refused", []byte(`[{"event_id":"x"}]`)},
		{"a JSON string is refused", []byte(`"hello"`)},
		{"a truncated object is refused", []byte(`{"event_id":"x","twin":{"a":{"actual":{"value":"1"}}}`)},
		{"two objects are refused", []byte(`{"event_id":"x","twin":{"a":{"actual":{"value":"1"}}}}{}`)},
		{"a string timestamp is refused", []byte(`{"event_id":"x","timestamp":"now","twin":{"a":{"actual":{"value":"1"}}}}`)},
		{"a numeric event id is refused", []byte(`{"event_id":5,"twin":{"a":{"actual":{"value":"1"}}}}`)},
		{"a twin list is refused", []byte(`{"twin":[{"actual":{"value":"1"}}]}`)},
		{"a null twin entry is refused", []byte(`{"twin":{"a":null}}`)},
		{"a null actual value is refused", []byte(`{"twin":{"a":{"actual":{"value":null}}}}`)},
		{"an empty property name is refused", []byte(`{"twin":{"":{"actual":{"value":"1"}}}}`)},
		{"a property name with a wildcard is refused", []byte(`{"twin":{"a+":{"actual":{"value":"1"}}}}`)},
		{"a property name over 63 characters is refused", []byte(`{"twin":{"` + strings.Repeat("a", 64) + `":{"actual":{"value":"1"}}}}`)},
		{"an oversize payload is refused", []byte(`{"twin":{"a":{"actual":{"value":"` + strings.Repeat("1", MaxPayloadSize) + `"}}}}`)},
		{"an unknown field inside a twin is refused", []byte(`{"twin":{"a":{"actual":{"value":"1"},"desired":{"value":"2"}}}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUpdate(tt.payload)
			if Code(err) != CodeBadRequest {
				t.Errorf("err = %v (code %d), want a 400", err, Code(err))
			}
		})
	}
}

func TestDeviceTopicsSplitIntoNamespaceNameAndOperation(t *testing.T) {
	tests := []struct {
		name, topic, ns, dev, op string
		ok                       bool
	}{
		{"a twin update names its device", "$hw/events/device/default/lamp/twin/update", "default", "lamp", OpTwinUpdate, true},
		{"a state update names its device", "$hw/events/device/plant-1/pump.3/state/update", "plant-1", "pump.3", OpStateUpdate, true},
		{"a device without a namespace level is not a device topic", "$hw/events/device/lamp/twin", "lamp", "twin", "", false},
		{"an empty namespace is not a device topic", "$hw/events/device//lamp/twin/update", "", "", "", false},
		{"a wildcard level is not a device", "$hw/events/device/+/lamp/twin/update", "", "", "", false},
		{"a node topic is not a device topic", "$hw/events/node/edge-1/membership/get", "", "", "", false},
		{"a topic without an operation is not a device topic", "$hw/events/device/default/lamp/", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, dev, op, ok := ParseDeviceTopic(tt.topic)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (ns != tt.ns || dev != tt.dev || op != tt.op) {
				t.Errorf("got %q %q %q, want %q %q %q", ns, dev, op, tt.ns, tt.dev, tt.op)
			}
		})
	}
	if got := DeviceTopic("default", "lamp", OpTwinUpdateDelta); got != "$hw/events/device/default/lamp/twin/update/delta" {
		t.Errorf("DeviceTopic = %q", got)
	}
	if got := NodeTopic("edge-1", OpMembershipUpdated); got != "$hw/events/node/edge-1/membership/updated" {
		t.Errorf("NodeTopic = %q", got)
	}
}

// FuzzParsePayload feeds arbitrary payloads to every parser: none may panic, refusals carry a
// result code a mapper knows, and what is accepted keeps the protocol's promises.
func FuzzParsePayload(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(readFixture(f, e.Name()))
		}
	}
	f.Add([]byte(`{"twin":{"a":{"actual":{"value":"1"},"expected":null}}}`))
	f.Add([]byte(`{"event_id":"\u0000","twin":{"a":{"actual":{}}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		u, err := ParseUpdate(payload)
		switch {
		case err != nil:
			if c := Code(err); c != CodeBadRequest && c != CodeConflict {
				t.Fatalf("twin update refused with code %d: %v", c, err)
			}
		default:
			if len(u.Twin) == 0 {
				t.Fatal("an update without twins was accepted")
			}
			for name, tw := range u.Twin {
				if !propertyName.MatchString(name) || tw == nil || tw.Expected != nil || tw.Actual == nil || tw.Actual.Value == nil {
					t.Fatalf("accepted a bad twin %q: %+v", name, tw)
				}
			}
			if len(payload) > MaxPayloadSize {
				t.Fatal("accepted an oversize payload")
			}
		}
		if s, err := ParseStateUpdate(payload); err == nil {
			if !wire.KnownDeviceState(s.State) {
				t.Fatalf("accepted the unknown state %q", s.State)
			}
		} else if Code(err) != CodeBadRequest {
			t.Fatalf("state update refused with code %d: %v", Code(err), err)
		}
		if _, err := ParseRequest(payload); err != nil && Code(err) != CodeBadRequest {
			t.Fatalf("request refused with code %d: %v", Code(err), err)
		}
		_ = EventID(payload)
	})
}
