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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// pahoBus is the Bus over a paho client, as the test's own adapter: DeviceTwin does not depend
// on edge/bus, and this test checks the protocol over a real MQTT broker all the same.
type pahoBus struct{ c paho.Client }

var errTimeout = errors.New("the broker did not answer in time")

func (b *pahoBus) Publish(topic string, payload []byte) error {
	tok := b.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitFor) {
		return errTimeout
	}
	return tok.Error()
}

func (b *pahoBus) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	tok := b.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { handler(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(waitFor) {
		return errTimeout
	}
	return tok.Error()
}

// startBroker starts mochi-mqtt's broker in the test, on a loopback port of its own.
func startBroker(t *testing.T) string {
	t.Helper()
	server := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "test", Address: "127.0.0.1:0"})
	if err := server.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := server.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return tcp.Address()
}

func connect(t *testing.T, addr, id string) *pahoBus {
	t.Helper()
	// Handlers publish results and wait for the broker's ack: with ordered delivery paho would
	// wait for the handler before reading that ack.
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetOrderMatters(false)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connecting %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &pahoBus{c: c}
}

// TestTheProtocolOverARealBroker runs a mapper's conversation through mochi-mqtt's broker and
// paho clients: delta, report, result, document, refusal.
func TestTheProtocolOverARealBroker(t *testing.T) {
	addr := startBroker(t)
	store, err := meta.Open(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := newMapper(t, connect(t, addr, "mapper"))
	tw, err := New(Config{NodeName: node, Store: store, Bus: connect(t, addr, "edgecore")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-tw.Done() })
	if err := tw.Start(ctx); err != nil {
		t.Fatal(err)
	}

	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: "thermo", Version: "v1"}
	body, _ := json.Marshal(thermostat("u1", new("21.5"), nil))
	if err := store.PutObject(ref, body); err != nil {
		t.Fatal(err)
	}
	tw.ObjectStored(ref, body)

	var delta Delta
	m.await(dev(OpTwinUpdateDelta), &delta)
	if delta.Delta["setpoint"] != "21.5" {
		t.Fatalf("delta = %+v", delta)
	}
	m.send(dev(OpTwinUpdate), `{"event_id":"e1","twin":{"setpoint":{"actual":{"value":"21.5"}}}}`)
	var res Result
	m.await(dev(OpTwinUpdateResult), &res)
	if res.EventID != "e1" || res.Code != 0 {
		t.Fatalf("result = %+v", res)
	}
	m.await(dev(OpTwinUpdateDocument), &Document{})
	m.send(dev(OpTwinUpdate), `{"event_id":"e2","twin":{"setpoint":{"expected":{"value":"25"}}}}`)
	var refused Result
	m.await(dev(OpTwinUpdateResult), &refused)
	if refused.EventID != "e2" || refused.Code != CodeConflict {
		t.Errorf("result = %+v, want a 409", refused)
	}
	if p, _ := store.Pending(0, 0); len(p) != 1 {
		t.Errorf("pending = %s, want the one accepted report", fmt.Sprint(p))
	}
}
