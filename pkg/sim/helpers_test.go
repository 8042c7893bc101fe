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
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/edge/twin"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// waitFor bounds every wait: a test fails after it rather than hanging. It is generous because
// the race detector on a shared machine slows everything down.
const waitFor = 20 * time.Second

const node = "edge-1"

// startBroker starts mochi-mqtt's broker in the test, on a loopback port of its own, as
// edgecore's internal mode does.
func startBroker(t *testing.T) string {
	t.Helper()
	_, addr := serveBroker(t, "127.0.0.1:0", nil)
	return addr
}

// broker is a broker of the test; Close may be called before the test's cleanup does.
type broker struct {
	*mqtt.Server
	once sync.Once
}

// Close ends every session and frees the port, once.
func (b *broker) Close() { b.once.Do(func() { _ = b.Server.Close() }) }

// serveBroker starts a broker on address with an inline client, which setup may subscribe
// before the broker serves, so that nothing a client sends can come before it. The broker is
// closed when the test ends, if the test did not close it.
func serveBroker(t *testing.T, address string, setup func(*mqtt.Server)) (*broker, string) {
	t.Helper()
	server := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "test", Address: address})
	if err := server.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(server)
	}
	if err := server.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &broker{Server: server}
	t.Cleanup(b.Close)
	return b, tcp.Address()
}

var errTimeout = errors.New("the broker did not answer in time")

// pahoBus is DeviceTwin's Bus over a paho client, as edge/twin's own broker test adapts it:
// DeviceTwin does not depend on edge/bus.
type pahoBus struct{ c paho.Client }

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

func connect(t *testing.T, addr, id string) *pahoBus {
	t.Helper()
	// DeviceTwin's handlers publish results and wait for the broker's ack: with ordered
	// delivery paho would wait for the handler before reading that ack.
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetOrderMatters(false)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connecting %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &pahoBus{c: c}
}

// edge is edgecore's DeviceTwin over a real SQLite store and the broker, with the devices put
// and deleted as EdgeHub does when the cloud sends them.
type edge struct {
	t     *testing.T
	store *meta.Store
	twin  *twin.DeviceTwin
}

func startEdge(t *testing.T, addr string) *edge {
	t.Helper()
	store, err := meta.Open(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	tw, err := twin.New(twin.Config{NodeName: node, Store: store, Bus: connect(t, addr, "edgecore-"+node)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-tw.Done()
		_ = store.Close()
	})
	return &edge{t: t, store: store, twin: tw}
}

// put stores a device in namespace default as EdgeHub does: the store first, then DeviceTwin.
func (e *edge) put(name, version string, d wire.Device) {
	e.t.Helper()
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: name, Version: version}
	body, err := json.Marshal(d)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.PutObject(ref, body); err != nil {
		e.t.Fatal(err)
	}
	e.twin.ObjectStored(ref, body)
}

func (e *edge) delete(name string) {
	e.t.Helper()
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "default", Name: name}
	if err := e.store.DeleteObject(ref); err != nil {
		e.t.Fatal(err)
	}
	e.twin.ObjectDeleted(ref)
}

// reported is the value the edge stored as reported for a device's property, "" if none.
func (e *edge) reported(name, prop string) string {
	e.t.Helper()
	rows, err := e.store.Twins()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name && r.Property == prop && r.Reported != nil {
			return *r.Reported
		}
	}
	return ""
}

// pendingReport is the newest twin report queued for the cloud for a device's property.
func (e *edge) pendingReport(name, prop string) (wire.TwinReport, bool) {
	e.t.Helper()
	pending, err := e.store.Pending(0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var found wire.TwinReport
	ok := false
	for _, p := range pending {
		if p.Kind != wire.ReportKindDeviceTwin || p.Name != name {
			continue
		}
		var r wire.TwinReport
		if err := json.Unmarshal(p.Body, &r); err != nil {
			e.t.Fatal(err)
		}
		if r.Property == prop {
			found, ok = r, true
		}
	}
	return found, ok
}

func (e *edge) state(name string) string {
	e.t.Helper()
	states, err := e.store.DeviceStates()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range states {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

// syncBuffer is a log the test reads while the simulator writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startSim runs a simulator for node against the broker until the test ends, and waits until
// it is connected and subscribed. The test fails if Run ends with an error.
func startSim(t *testing.T, addr string, configure func(*Config)) (*Simulator, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{Broker: "tcp://" + addr, Node: node, ReportInterval: 50 * time.Millisecond, Log: logs,
		Rand: rand.New(rand.NewPCG(1, 2))}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("simulator log:\n%s", logs.String())
		}
	})
	eventually(t, "the simulator connects and subscribes", func() bool { return s.Stats().Connected })
	return s, logs
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// findEvent says whether the simulator recorded an event of this type for the device whose
// detail contains detail.
func findEvent(s *Simulator, typ, device, detail string) bool {
	for _, e := range s.Events() {
		if e.Type == typ && e.Device == device && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

func deviceOf(s *Simulator, id string) (DeviceSnapshot, bool) {
	for _, d := range s.Snapshot() {
		if d.ID == id {
			return d, true
		}
	}
	return DeviceSnapshot{}, false
}

// The devices of the tests, as the cloud sends them to the edge.

func thermostatDevice(uid, protocol string, setpoint, power *string) wire.Device {
	return wire.Device{UID: uid, Model: "thermostat", Protocol: protocol, Properties: []wire.DeviceProperty{
		{Name: "temperature", Type: "float", AccessMode: "ReadOnly", Minimum: new("-40"), Maximum: new("85")},
		{Name: "setpoint", Type: "double", AccessMode: "ReadWrite", Minimum: new("5"), Maximum: new("30"), Desired: setpoint},
		{Name: "power", Type: "boolean", AccessMode: "ReadWrite", Desired: power},
	}}
}

func switchDevice(uid string, power *string) wire.Device {
	return wire.Device{UID: uid, Model: "switch", Protocol: DefaultProtocol, Properties: []wire.DeviceProperty{
		{Name: "power", Type: "boolean", AccessMode: "ReadWrite", Desired: power},
	}}
}

func counterDevice(uid string, count, maximum *string) wire.Device {
	return wire.Device{UID: uid, Model: "counter", Protocol: DefaultProtocol, Properties: []wire.DeviceProperty{
		{Name: "count", Type: "int", AccessMode: "ReadWrite", Minimum: new("0"), Maximum: maximum, Desired: count},
	}}
}
