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
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeAcceptsEveryWellFormedType(t *testing.T) {
	dev := &ObjectRef{Kind: KindDevice, Namespace: "default", Name: "lobby", Version: "sha256:ab"}
	tests := []struct {
		name string
		msg  Message
	}{
		{"a hello with held objects", Message{ID: "1", Type: TypeHello, Hello: &Hello{ProtocolVersion: ProtocolVersion,
			Agent: AgentInfo{Version: "v0.1.0", OS: "linux", Arch: "arm64"}, Objects: []ObjectRef{*dev}}}},
		{"a welcome", Message{ID: "2", Type: TypeWelcome, Welcome: &Welcome{ProtocolVersion: 1, NodeName: "edge-1", AckedSeq: 7}}},
		{"a refusal", Message{ID: "3", Type: TypeRefused, Refused: &Refused{Reason: "ProtocolVersionRefused", Message: "speak v1"}}},
		{"an upsert", Message{ID: "4", Type: TypeUpsert, Object: dev, Body: json.RawMessage(`{"spec":{}}`)}},
		{"a delete without a version", Message{ID: "5", Type: TypeDelete, Object: &ObjectRef{Kind: KindDevice, Namespace: "default", Name: "lobby"}}},
		{"the end of a resync", Message{ID: "6", Type: TypeSynced}},
		{"an edge's ack of an object", Message{ID: "7", Type: TypeAck, Object: dev}},
		{"a cloud's ack of reports", Message{ID: "8", Type: TypeAck, Seq: 42}},
		{"reports", Message{ID: "9", Type: TypeReport, Reports: []Report{{Seq: 1, Kind: "DeviceTwin", Namespace: "default", Name: "lobby", Body: json.RawMessage(`{"x":1}`)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Encode(&tt.msg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if !reflect.DeepEqual(*got, tt.msg) {
				t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", *got, tt.msg)
			}
		})
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"malformed JSON", `{"id":"1","type":"synced"`, "malformed JSON"},
		{"not an object", `[1,2]`, "malformed JSON"},
		{"an unknown message type", `{"id":"1","type":"shutdown"}`, `unknown message type "shutdown"`},
		{"an unknown field", `{"id":"1","type":"synced","node":"edge-2"}`, `unknown field "node"`},
		{"trailing data", `{"id":"1","type":"synced"} {}`, "trailing data"},
		{"no id", `{"type":"synced"}`, "no id"},
		{"an unknown object kind", `{"id":"1","type":"delete","object":{"kind":"Gadget","name":"x"}}`, `unknown object kind "Gadget"`},
		{"an upsert without a version", `{"id":"1","type":"upsert","object":{"kind":"Device","name":"x"},"body":{}}`, "has no version"},
		{"an upsert whose body is not an object", `{"id":"1","type":"upsert","object":{"kind":"Device","name":"x","version":"v"},"body":"hi"}`, "not a JSON object"},
		{"a name with a slash", `{"id":"1","type":"delete","object":{"kind":"Device","namespace":"a/b","name":"x"}}`, "malformed name"},
		{"a field of another type", `{"id":"1","type":"synced","seq":3}`, "must not set seq"},
		{"an ack naming both an object and a sequence", `{"id":"1","type":"ack","seq":3,"object":{"kind":"Device","name":"x"}}`, "either an object or a sequence"},
		{"a hello of version 0", `{"id":"1","type":"hello","hello":{"protocolVersion":0,"agent":{"version":"","os":"","arch":""}}}`, "protocol version 0"},
		{"a report with sequence 0", `{"id":"1","type":"report","reports":[{"seq":0,"kind":"k","name":"n","body":{}}]}`, "sequence 0"},
		{"a report without a body", `{"id":"1","type":"report","reports":[{"seq":1,"kind":"k","name":"n"}]}`, "no valid JSON body"},
		{"a negative sequence", `{"id":"1","type":"ack","seq":-1}`, "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.data))
			if err == nil {
				t.Fatalf("Decode accepted %s as %+v", tt.data, m)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRefusesOversizeFrames(t *testing.T) {
	big := `{"id":"1","type":"upsert","object":{"kind":"Device","name":"x","version":"v"},"body":{"pad":"` +
		strings.Repeat("a", MaxFrameSize) + `"}}`
	if _, err := Decode([]byte(big)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of %d bytes = %v, want ErrTooLarge", len(big), err)
	}
	m := &Message{ID: "1", Type: TypeUpsert, Object: &ObjectRef{Kind: KindDevice, Name: "x", Version: "v"},
		Body: json.RawMessage(`{"pad":"` + strings.Repeat("a", MaxFrameSize) + `"}`)}
	if _, err := Encode(m); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode of an oversize upsert = %v, want ErrTooLarge", err)
	}
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		version int
		want    bool
	}{
		{ProtocolVersion, true},
		{ProtocolVersion + 1, false},
		{0, false},
		{-1, false},
	}
	for _, tt := range tests {
		if got := Accepts(tt.version); got != tt.want {
			t.Errorf("Accepts(%d) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// FuzzDecode: whatever arrives on the socket, Decode returns a valid message or an error, never
// panics, and what it accepts survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","type":"synced"}`,
		`{"id":"1","type":"hello","hello":{"protocolVersion":1,"agent":{"version":"v","os":"linux","arch":"amd64"},"objects":[{"kind":"Device","namespace":"d","name":"n","version":"v"}]}}`,
		`{"id":"2","type":"upsert","object":{"kind":"Device","namespace":"d","name":"n","version":"v"},"body":{"a":[1,2]}}`,
		`{"id":"3","type":"ack","seq":9}`,
		`{"id":"4","type":"report","reports":[{"seq":1,"kind":"DeviceTwin","name":"n","body":{"v":"1"}}]}`,
		`{"id":"5","type":"refused","refused":{"reason":"R","message":"m"}}`,
		`{"id":"6","type":"welcome","welcome":{"protocolVersion":1,"nodeName":"e"}}`,
		`{`, `null`, `{"id":"1","type":"ack","object":{"kind":"Device","name":"n"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v (%+v)", err, m)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("a re-encoded message does not decode: %v (%s)", err, out)
		}
		if !reflect.DeepEqual(normalize(t, m), normalize(t, again)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// normalize re-marshals a message so that RawMessage bodies compare by content, not spacing.
func normalize(t *testing.T, m *Message) any {
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
