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
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
)

const twinFilter = "$hw/events/device/+/+/twin/update"

func externalConfig(addr, id string) Config {
	return Config{Mode: config.BrokerExternal, Address: addr, ClientID: id, Logger: logr.Discard()}
}

func TestExternalMosquittoCarriesTwinTopicsBothWays(t *testing.T) {
	mq := startMosquitto(t, "", "")
	handler, got := collector()
	b := startBus(t, externalConfig(mq.addr, "edgecore-ext"), map[string]Handler{twinFilter: handler})
	m := newMapper(t, mq.addr, "mapper-ext")

	m.publish(t, twinUpdate, "reported")
	if msg := receive(t, got); msg.topic != twinUpdate || msg.payload != "reported" {
		t.Errorf("handler got %+v", msg)
	}
	deltas := m.subscribe(t, twinFilter+"/delta")
	if err := b.Publish(twinUpdate+"/delta", []byte("desired")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if msg := receive(t, deltas); msg.payload != "desired" {
		t.Errorf("mapper got %+v", msg)
	}
}

func TestExternalMosquittoCredentials(t *testing.T) {
	mq := startMosquitto(t, "edge", "s3cret")
	tests := []struct {
		name        string
		user, pass  string
		wantRefused bool
	}{
		{name: "the right credentials connect", user: "edge", pass: "s3cret"},
		{name: "a wrong password is refused", user: "edge", pass: "wrong", wantRefused: true},
		{name: "an unknown user is refused", user: "nobody", pass: "s3cret", wantRefused: true},
		{name: "no credentials are refused", wantRefused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := externalConfig(mq.addr, "edgecore-creds")
			cfg.Username, cfg.Password = tt.user, tt.pass
			b, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = b.Start(ctx)
			switch {
			case tt.wantRefused && !errors.Is(err, ErrRefused):
				t.Fatalf("Start: %v, want ErrRefused", err)
			case tt.wantRefused && !strings.Contains(err.Error(), mq.addr):
				t.Errorf("Start error %q does not name the broker", err)
			case !tt.wantRefused && err != nil:
				t.Fatalf("Start: %v", err)
			case !tt.wantRefused && !b.Connected():
				t.Error("Connected() is false after Start")
			}
			if tt.wantRefused && ctx.Err() != nil {
				t.Error("Start kept retrying a refusal until the context ended")
			}
			if tt.wantRefused {
				t.Logf("Start said: %v", err)
			}
		})
	}
}

// TestExternalMosquittoRestart restarts mosquitto (persistence on, same port and data
// directory) under a connected bus. The bus reaches mosquitto through a gate the test shuts
// while mosquitto is down, so that a mapper can publish to the restarted broker while the bus
// is certainly still reconnecting; then the gate opens and paho's auto-reconnect brings the bus
// back.
func TestExternalMosquittoRestart(t *testing.T) {
	mq := startMosquitto(t, "", "")
	g := newGate(t, mq.addr)
	handler, got := collector()
	b := startBus(t, externalConfig(g.addr, "edgecore-restart"), map[string]Handler{twinFilter: handler})
	before := newMapper(t, mq.addr, "mapper-before")
	before.publish(t, twinUpdate, "before")
	if msg := receive(t, got); msg.payload != "before" {
		t.Fatalf("handler got %+v", msg)
	}

	g.shut()
	mq.restart()
	eventually(t, 10*time.Second, func() bool { return !b.Connected() }, "the bus still says it is connected")

	// The restarted mosquitto restored the bus's session (its subscription) from its
	// persistence file, so it queues this QoS 1 message for the offline bus.
	during := newMapper(t, mq.addr, "mapper-during")
	during.publish(t, twinUpdate, "while reconnecting")
	if b.Connected() {
		t.Fatal("the bus reconnected through a shut gate")
	}

	g.reopen()
	eventually(t, 30*time.Second, b.Connected, "the bus did not reconnect after mosquitto restarted")
	// QoS 1 is at least once: "before" comes again when its PUBACK was still on the way as the
	// gate shut (mosquitto then persists it as in flight and resends it with the DUP flag).
	if msg := receiveSkipping(t, got, "before"); msg.payload != "while reconnecting" {
		t.Errorf("first new message after the reconnect is %+v, want the one queued while reconnecting", msg)
	}

	during.publish(t, twinUpdate, "after")
	if msg := receiveSkipping(t, got, "before"); msg.payload != "after" {
		t.Errorf("handler got %+v, want the message published after the reconnect", msg)
	}
	if err := b.Publish(twinUpdate+"/result", []byte("ok")); err != nil {
		t.Errorf("Publish after the reconnect: %v", err)
	}
	if s := b.Stats(); s.Reconnects < 1 {
		t.Errorf("stats %+v count no reconnect", s)
	}
}

// TestExternalMosquittoKeepsTheSessionAcrossAnEdgecoreRestart stops the bus, publishes while
// it is away and mosquitto restarts, then starts a new bus with the same client id: the
// persistent session hands it the message as soon as it connects, because it subscribed before
// Start.
func TestExternalMosquittoKeepsTheSessionAcrossAnEdgecoreRestart(t *testing.T) {
	mq := startMosquitto(t, "", "")
	first := startBus(t, externalConfig(mq.addr, "edgecore-node-b"), map[string]Handler{twinFilter: func(string, []byte) {}})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	m := newMapper(t, mq.addr, "mapper-away")
	m.publish(t, twinUpdate, "while edgecore was down")
	mq.restart()

	handler, got := collector()
	startBus(t, externalConfig(mq.addr, "edgecore-node-b"), map[string]Handler{twinFilter: handler})
	if msg := receive(t, got); msg.payload != "while edgecore was down" {
		t.Errorf("handler got %+v", msg)
	}
}
