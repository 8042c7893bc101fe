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

package bus

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestInternalBrokerCarriesTwinTopicsBothWays(t *testing.T) {
	handler, got := collector()
	b := startBus(t, internalConfig("edgecore-node-a"), map[string]Handler{"$hw/events/device/+/+/twin/update": handler})
	if !b.Connected() {
		t.Fatal("Connected() is false after Start returned")
	}
	m := newMapper(t, b.Addr(), "mapper-a")

	m.publish(t, twinUpdate, `{"event_id":"1"}`)
	if msg := receive(t, got); msg.topic != twinUpdate || msg.payload != `{"event_id":"1"}` {
		t.Errorf("handler got %+v", msg)
	}

	deltas := m.subscribe(t, "$hw/events/device/+/+/twin/update/delta")
	delta := twinUpdate + "/delta"
	if err := b.Publish(delta, []byte("desired")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if msg := receive(t, deltas); msg.topic != delta || msg.payload != "desired" {
		t.Errorf("mapper got %+v", msg)
	}
	eventually(t, 5*time.Second, func() bool {
		s := b.Stats()
		return s.MessagesIn == 1 && s.MessagesOut == 1
	}, "stats are %+v", b.Stats())
}

func TestPanickingHandlerIsRecoveredAndCounted(t *testing.T) {
	handler, got := collector()
	b := startBus(t, internalConfig("edgecore-panics"), map[string]Handler{
		"$hw/events/device/+/+/twin/update": func(topic string, payload []byte) {
			if string(payload) == "boom" {
				panic("mapper sent a bad payload")
			}
			handler(topic, payload)
		},
	})
	m := newMapper(t, b.Addr(), "mapper-panics")
	m.publish(t, twinUpdate, "boom")
	m.publish(t, twinUpdate, "fine")
	// Delivery is in order, so the second message arriving means the first was dispatched.
	if msg := receive(t, got); msg.payload != "fine" {
		t.Errorf("handler got %+v after the panic", msg)
	}
	if s := b.Stats(); s.HandlerPanics != 1 || s.MessagesIn != 2 {
		t.Errorf("stats are %+v, want one handler panic and two messages in", s)
	}
	if !b.Connected() {
		t.Error("the bus lost its connection over a handler panic")
	}
}

func TestPublishWithoutConnectionFailsClearly(t *testing.T) {
	b, err := New(internalConfig("edgecore-offline"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(twinUpdate, nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish before Start: %v, want ErrNotConnected", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(twinUpdate, nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish after Close: %v, want ErrNotConnected", err)
	}
	if b.Connected() {
		t.Error("Connected() is true after Close")
	}
}

func TestInternalBrokerAddress(t *testing.T) {
	tests := []struct {
		name        string
		address     string
		allow       bool
		wantRefusal bool
	}{
		{name: "an IPv4 loopback address is accepted", address: "127.0.0.1:1883"},
		{name: "another 127/8 address is accepted", address: "127.0.0.2:1883"},
		{name: "the IPv6 loopback address is accepted", address: "[::1]:1883"},
		{name: "localhost is accepted", address: "localhost:1883"},
		{name: "every interface is refused", address: "0.0.0.0:1883", wantRefusal: true},
		{name: "an empty host is refused because it means every interface", address: ":1883", wantRefusal: true},
		{name: "a routable address is refused", address: "192.0.2.10:1883", wantRefusal: true},
		{name: "a host name other than localhost is refused", address: "edge-1.example:1883", wantRefusal: true},
		{name: "every interface is accepted when explicitly allowed", address: "0.0.0.0:1883", allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := internalConfig("edgecore-addr")
			cfg.Address, cfg.AllowNonLoopback = tt.address, tt.allow
			_, err := New(cfg)
			if tt.wantRefusal != errors.Is(err, ErrNotLoopback) {
				t.Errorf("New with %s: %v", tt.address, err)
			}
			if !tt.wantRefusal && err != nil {
				t.Errorf("New with %s: %v", tt.address, err)
			}
		})
	}
}

func TestInternalBrokerPortInUseFailsStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	cfg := internalConfig("edgecore-busy")
	cfg.Address = busy.Addr().String()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if err == nil {
		_ = b.Close()
		t.Fatal("Start succeeded on a port in use")
	}
	if !strings.Contains(err.Error(), cfg.Address) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start error %q does not name the address and the cause", err)
	}
}

func TestCloseFreesTheInternalBrokerPort(t *testing.T) {
	first := startBus(t, internalConfig("edgecore-reuse"), nil)
	addr := first.Addr()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cfg := internalConfig("edgecore-reuse")
	cfg.Address = addr
	handler, got := collector()
	second := startBus(t, cfg, map[string]Handler{"$hw/#": handler})
	m := newMapper(t, second.Addr(), "mapper-reuse")
	membership := "$hw/events/node/edge-1/membership/get"
	m.publish(t, membership, "again")
	if msg := receive(t, got); msg.topic != membership || msg.payload != "again" {
		t.Errorf("handler got %+v", msg)
	}
}

func TestStartTwiceIsAnError(t *testing.T) {
	b := startBus(t, internalConfig("edgecore-twice"), nil)
	if err := b.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
}
