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

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/edge/twin"
	"github.com/edgetwin/edgetwin/test/harness"
)

// mapper is a device mapper as a user would write one against docs/mqtt.md: a plain MQTT client
// on the node's broker, speaking KubeEdge's twin topics.
type mapper struct {
	t      *testing.T
	client paho.Client
	mu     sync.Mutex
	got    map[string][]string // topic → payloads
}

func newMapper(t *testing.T, broker string) *mapper {
	t.Helper()
	m := &mapper{t: t, got: map[string][]string{}}
	record := func(_ paho.Client, msg paho.Message) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.got[msg.Topic()] = append(m.got[msg.Topic()], string(msg.Payload()))
	}
	subscribed := make(chan error, 16)
	// Like a real mapper, it subscribes on every connect: an internal broker that restarted
	// with edgecore has no memory of the mapper's session.
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("test-mapper").SetAutoReconnect(true).
		SetMaxReconnectInterval(time.Second).SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe("$hw/events/device/+/+/#", 1, record)
		tok.WaitTimeout(5 * time.Second)
		subscribed <- tok.Error()
	})
	m.client = paho.NewClient(opts)
	harness.WaitFor(t, "the mapper to connect to edgecore's broker", func() bool {
		tok := m.client.Connect()
		return tok.WaitTimeout(2*time.Second) && tok.Error() == nil
	})
	t.Cleanup(func() { m.client.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("subscribing the mapper: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the mapper did not subscribe within 10s")
	}
	return m
}

// last returns the newest payload on a topic, or "".
func (m *mapper) last(topic string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.got[topic]; len(p) > 0 {
		return p[len(p)-1]
	}
	return ""
}

// report publishes an actual setpoint of device "hall" in ns.
func (m *mapper) report(ns, value string) {
	m.t.Helper()
	m.publish(twin.DeviceTopic(ns, "hall", twin.OpTwinUpdate), fmt.Sprintf(`{"event_id":"e-%d","timestamp":%d,"twin":{%q:{"actual":{"value":%q,"metadata":{"timestamp":%d}}}}}`,
		time.Now().UnixNano(), time.Now().UnixMilli(), "setpoint", value, time.Now().UnixMilli()))
}

func (m *mapper) publish(topic, payload string) {
	m.t.Helper()
	tok := m.client.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		m.t.Fatalf("publishing to %s: %v", topic, tok.Error())
	}
}

// TestAMapperGetsDeltasAndItsReportsReachTheCloudAcrossAnOutage: the desired value of a
// device travels cloud → CloudHub → EdgeHub → DeviceTwin → the internal MQTT broker → a mapper
// as a delta; the mapper's reports are accepted into the outbox and acknowledged by the cloud,
// and reports made while the cloud is away wait in the outbox and reach it after it returns.
func TestAMapperGetsDeltasAndItsReportsReachTheCloudAcrossAnOutage(t *testing.T) {
	t.Run("with the broker inside edgecore", func(t *testing.T) { mapperAcrossAnOutage(t, "internal") })
	t.Run("with an external mosquitto", func(t *testing.T) { mapperAcrossAnOutage(t, "external") })
}

func mapperAcrossAnOutage(t *testing.T, brokerMode string) {
	ctx := context.Background()
	ns := newNamespace(t)
	model := &v1alpha1.DeviceModel{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "thermostat"}, Spec: v1alpha1.DeviceModelSpec{
		Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite, Minimum: new("5"), Maximum: new("30")}}}}
	if err := k8s.Create(ctx, model); err != nil {
		t.Fatal(err)
	}
	node := ns + "-" + brokerMode[:3] // unique per run: EdgeNodes are cluster-scoped
	createDevice(t, ns, "hall", node, "21.5")

	cc := cl.StartCloudcore(t, harness.FreePort(t))
	dataDir := t.TempDir()
	broker := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	if brokerMode == "external" {
		broker = harness.StartMosquitto(t)
	}
	if out, code := cl.Run(t, "edgecore", "join", "--server", cc.ServerURL(), "--token", token(t, node), "--name", node,
		"--data-dir", dataDir, "--broker-mode", brokerMode, "--broker-address", broker); code != 0 {
		t.Fatalf("join exited %d:\n%s", code, out)
	}
	edgeMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	edge := cl.Start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics, "--profiling")
	harness.WaitFor(t, "the edge to be synced", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_synced") == 1 })

	// A mapper that starts after edgecore asks for the twin, as KubeEdge mappers do; deltas
	// published before it subscribed are not kept by the broker.
	m := newMapper(t, broker)
	deltaTopic := twin.DeviceTopic(ns, "hall", twin.OpTwinUpdateDelta)
	getResult := twin.DeviceTopic(ns, "hall", twin.OpTwinGetResult)
	harness.WaitFor(t, "the mapper's twin/get to show the desired setpoint", func() bool {
		m.publish(twin.DeviceTopic(ns, "hall", twin.OpTwinGet), fmt.Sprintf(`{"event_id":"get-%d","timestamp":%d}`,
			time.Now().UnixNano(), time.Now().UnixMilli()))
		var r twin.Result
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if json.Unmarshal([]byte(m.last(getResult)), &r) == nil && r.Twin["setpoint"] != nil &&
				r.Twin["setpoint"].Expected != nil && r.Twin["setpoint"].Expected.Value != nil && *r.Twin["setpoint"].Expected.Value == "21.5" {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	})

	// The mapper reports; the value is accepted and acknowledged by the cloud.
	m.report(ns, "21.5")
	harness.WaitFor(t, "the report to be accepted", func() bool { return harness.Metric(edgeMetrics, "edgetwin_twin_reports_accepted_total") == 1 })
	harness.WaitFor(t, "the outbox to drain", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })
	harness.WaitFor(t, "the reported setpoint in the Device status, synced", func() bool {
		return reported(t, ns, "hall", "setpoint") == "21.5" && deviceCondition(t, ns, "hall", v1alpha1.ConditionSynced) == metav1.ConditionTrue
	})

	// --profiling serves Go's profiles next to the metrics.
	if !harness.HTTPOK("http://" + edgeMetrics + "/debug/pprof/heap") {
		t.Fatal("edgecore run --profiling does not serve /debug/pprof/heap")
	}

	// A value outside the model is refused with a result naming the property, and not queued.
	m.report(ns, "99")
	resultTopic := twin.DeviceTopic(ns, "hall", twin.OpTwinUpdateResult)
	harness.WaitFor(t, "the refusal", func() bool {
		return strings.Contains(m.last(resultTopic), "setpoint") && strings.Contains(m.last(resultTopic), `"code":400`)
	})

	// The cloud goes away; reports wait in the outbox, coalesced to the newest per property.
	cc.Stop(t)
	harness.WaitFor(t, "the edge to notice", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_connected") == 0 })
	m.report(ns, "20")
	m.report(ns, "20.5")
	harness.WaitFor(t, "both offline reports to be accepted", func() bool { return harness.Metric(edgeMetrics, "edgetwin_twin_reports_accepted_total") == 3 })
	if got := harness.Metric(edgeMetrics, "edgetwin_edgehub_outbox_pending"); got != 1 {
		t.Fatalf("outbox holds %v reports while offline, want the newest one only", got)
	}
	// edgecore restarts while the cloud is still away: devices and twins come back from
	// SQLite, the mapper is served as before and the pending report is kept.
	edge.Stop(t)
	cl.Start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics)
	harness.WaitFor(t, "the restarted edge's metrics", func() bool { return harness.HTTPOK("http://" + edgeMetrics + "/healthz") })
	if harness.HTTPOK("http://" + edgeMetrics + "/debug/pprof/heap") {
		t.Fatal("edgecore run without --profiling serves /debug/pprof")
	}
	harness.WaitFor(t, "the restarted edge to restore its device", func() bool { return harness.Metric(edgeMetrics, "edgetwin_twin_devices") == 1 })
	harness.WaitFor(t, "the restarted edge to resend the delta", func() bool { return harness.Metric(edgeMetrics, "edgetwin_twin_deltas_sent_total") >= 1 })
	m.report(ns, "21")
	harness.WaitFor(t, "a report to the restarted edge to be accepted", func() bool {
		return harness.Metric(edgeMetrics, "edgetwin_twin_reports_accepted_total") == 1
	})
	if got := harness.Metric(edgeMetrics, "edgetwin_edgehub_outbox_pending"); got != 1 {
		t.Fatalf("outbox holds %v reports after the offline restart, want the newest one only", got)
	}

	// The desired value changes while the edge is away; after the cloud returns the mapper
	// gets the new delta and the offline report is acknowledged.
	patchSetpoint(t, ns, "hall", "19")
	cl.StartCloudcore(t, cc.HubPort)
	harness.WaitFor(t, "the offline report to reach the cloud", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })
	harness.WaitFor(t, "the report made offline to land in the Device status", func() bool { return reported(t, ns, "hall", "setpoint") == "21" })
	harness.WaitFor(t, "the mapper to get the new delta", func() bool {
		var d twin.Delta
		return json.Unmarshal([]byte(m.last(deltaTopic)), &d) == nil && d.Delta["setpoint"] == "19"
	})
}

// reported returns the value the Device's status reports for prop, or "".
func reported(t *testing.T, ns, name, prop string) string {
	t.Helper()
	dev := &v1alpha1.Device{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dev); err != nil {
		t.Fatalf("getting device %s/%s: %v", ns, name, err)
	}
	for _, tw := range dev.Status.Twins {
		if tw.Name == prop && tw.Reported != nil {
			return tw.Reported.Value
		}
	}
	return ""
}

// deviceCondition returns the status of the Device's condition typ, or "".
func deviceCondition(t *testing.T, ns, name, typ string) metav1.ConditionStatus {
	t.Helper()
	dev := &v1alpha1.Device{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dev); err != nil {
		t.Fatalf("getting device %s/%s: %v", ns, name, err)
	}
	if c := meta.FindStatusCondition(dev.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return ""
}
