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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edgetwin/edgetwin/pkg/sim"
)

const waitFor = 20 * time.Second

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(options) bool
	}{
		{"defaults", []string{"--node", "edge-1"}, "", func(o options) bool {
			return o.cfg.Broker == "tcp://127.0.0.1:1883" && o.cfg.Protocol == "simulator" && o.cfg.ReportInterval == time.Second &&
				o.cfg.ClientID == "" && o.httpAddress == "" && o.cfg.Verbosity == 0
		}},
		{"everything", []string{"--node=n", "--broker", "tcp://b:1884", "--username", "u", "--password", "p", "--client-id", "c",
			"--protocol", "*", "--report-interval", "250ms", "--http-address", "127.0.0.1:10352"}, "", func(o options) bool {
			return o.cfg.Node == "n" && o.cfg.Broker == "tcp://b:1884" && o.cfg.Username == "u" && o.cfg.Password == "p" &&
				o.cfg.ClientID == "c" && o.cfg.Protocol == sim.AllProtocols && o.cfg.ReportInterval == 250*time.Millisecond &&
				o.httpAddress == "127.0.0.1:10352"
		}},
		{"-v adds a level each time", []string{"-v", "--node", "n", "-v"}, "", func(o options) bool { return o.cfg.Verbosity == 2 }},
		{"-v=N sets the level", []string{"-v=3", "--node", "n"}, "", func(o options) bool { return o.cfg.Verbosity == 3 }},
		{"no node", []string{"--broker", "tcp://b:1"}, "--node is required", nil},
		{"a zero interval", []string{"--node", "n", "--report-interval", "0s"}, "must be positive", nil},
		{"an interval that is no duration", []string{"--node", "n", "--report-interval", "often"}, "invalid value", nil},
		{"a bad level", []string{"--node", "n", "-v=loud"}, "not a level", nil},
		{"an unknown flag", []string{"--node", "n", "--colour"}, "not defined", nil},
		{"an argument", []string{"--node", "n", "extra"}, `unexpected argument "extra"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

func TestRunRefusesABadCommandLineBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no node", nil},
		{"a node that cannot be a topic level", []string{"--node", "edge/1"}},
		{"a broker of an unknown scheme", []string{"--node", "n", "--broker", "http://127.0.0.1:1883"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A context that never ends: a run that got past the command line would hang.
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Errorf("err = %v, want a usage error", err)
			}
		})
	}
}

func TestHelpGoesToStdoutAndSucceeds(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, flagName := range []string{"-broker", "-node", "-client-id", "-protocol", "-report-interval", "-http-address", "-v"} {
		if !strings.Contains(out.String(), flagName) {
			t.Errorf("the help does not mention %s", flagName)
		}
	}
}

func TestRunFailsWhenTheHTTPAddressIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	err = run(context.Background(), []string{"--node", "n", "--http-address", ln.Addr().String()}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) {
		t.Errorf("err = %v, want a failure to serve", err)
	}
}

// syncBuffer is stderr, read by the test while run writes it.
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

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// deviceJSON and eventJSON are the shapes GET /devices and GET /events promise, decoded as a
// client of the endpoints would.
type deviceJSON struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	Protocol  string            `json:"protocol"`
	Values    map[string]string `json:"values"`
	Desired   map[string]string `json:"desired"`
	Deltas    int               `json:"deltas"`
	LastDelta *time.Time        `json:"lastDelta"`
}

type eventJSON struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Device string    `json:"device"`
	Detail string    `json:"detail"`
}

func events(t *testing.T, base string) []eventJSON {
	t.Helper()
	code, body := get(t, base+"/events")
	var ev []eventJSON
	if code != http.StatusOK || json.Unmarshal(body, &ev) != nil {
		return nil
	}
	return ev
}

func hasEvent(ev []eventJSON, typ, device, detail string) bool {
	for _, e := range ev {
		if e.Type == typ && e.Device == device && strings.Contains(e.Detail, detail) && !e.Time.IsZero() {
			return true
		}
	}
	return false
}

// TestRunSimulatesAndServesWhatItSees runs the command against a real broker, with a test
// client in the edge's place speaking the documented protocol, and reads the HTTP endpoints
// as an end-to-end test would.
func TestRunSimulatesAndServesWhatItSees(t *testing.T) {
	addr := startBroker(t)
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--broker", "tcp://" + addr, "--node", "edge-1", "--http-address", "127.0.0.1:0",
			"--report-interval", "50ms"}, io.Discard, stderr)
	}()
	stopped := false
	stop := func() error {
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			t.Fatalf("run did not return within %s of the context's end", waitFor)
			return nil
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})

	serving := regexp.MustCompile(`on (http://\S+)`)
	var base string
	eventually(t, "run says where it serves", func() bool {
		m := serving.FindStringSubmatch(stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	eventually(t, "/healthz says connected", func() bool { code, _ := get(t, base+"/healthz"); return code == http.StatusOK })

	edge := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("edge"))
	if tok := edge.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connecting the edge's client: %v", tok.Error())
	}
	defer edge.Disconnect(100)
	publish := func(topic, payload string) {
		t.Helper()
		if tok := edge.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publishing on %s: %v", topic, tok.Error())
		}
	}
	publish("$hw/events/node/edge-1/membership/updated", `{"event_id":"m1","timestamp":1767225600000,"added_devices":[
		{"id":"default/thermostat-1","name":"thermostat-1","namespace":"default","model":"thermostat","protocol":"simulator",
		 "twin":{"temperature":{"metadata":{"type":"float"}},"setpoint":{"metadata":{"type":"double"}}}}],"removed_devices":[]}`)
	publish("$hw/events/device/default/thermostat-1/twin/update/delta", `{"event_id":"d1","timestamp":1767225600001,"version":"v1",
		"twin":{"temperature":{"metadata":{"type":"float"}},"setpoint":{"expected":{"value":"25"},"metadata":{"type":"double"}}},
		"delta":{"setpoint":"25"}}`)
	eventually(t, "/events shows the delta", func() bool {
		return hasEvent(events(t, base), sim.EventDelta, "default/thermostat-1", "setpoint=25")
	})

	code, body := get(t, base+"/devices")
	var devices []deviceJSON
	if code != http.StatusOK || json.Unmarshal(body, &devices) != nil {
		t.Fatalf("GET /devices: %d %s", code, body)
	}
	if len(devices) != 1 {
		t.Fatalf("devices = %s, want the thermostat", body)
	}
	d := devices[0]
	if d.ID != "default/thermostat-1" || d.Kind != sim.KindThermostat || d.Protocol != "simulator" || d.Values["setpoint"] != "25" ||
		d.Desired["setpoint"] != "25" || d.Deltas != 1 || d.LastDelta == nil || d.Values["temperature"] == "" {
		t.Errorf("device = %s", body)
	}
	eventually(t, "/metrics counts the device, the delta and reports", func() bool {
		_, m := get(t, base+"/metrics")
		return bytes.Contains(m, []byte("edgetwin_sim_devices 1\n")) && bytes.Contains(m, []byte("edgetwin_sim_deltas_total 1\n")) &&
			regexp.MustCompile(`edgetwin_sim_reports_total [1-9]`).Match(m)
	})

	publish("$hw/events/node/edge-1/membership/updated", `{"event_id":"m2","timestamp":1767225600002,"added_devices":[],
		"removed_devices":[{"id":"default/thermostat-1","name":"thermostat-1","namespace":"default"}]}`)
	eventually(t, "/events shows the removal", func() bool {
		return hasEvent(events(t, base), sim.EventRemoved, "default/thermostat-1", "")
	})

	if err := stop(); err != nil {
		t.Errorf("run after the context ended: %v", err)
	}
	for _, line := range []string{"membership added=default/thermostat-1", "delta device=default/thermostat-1 setpoint=25",
		"membership removed=default/thermostat-1"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr has no line with %q", line)
		}
	}
	if code, _ := get(t, base+"/devices"); code != 0 {
		t.Errorf("the HTTP server still answers after run returned")
	}
}
