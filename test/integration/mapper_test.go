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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/edge/twin"
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
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("test-mapper").SetAutoReconnect(true)
	m.client = paho.NewClient(opts)
	waitFor(t, "the mapper to connect to edgecore's broker", func() bool {
		tok := m.client.Connect()
		return tok.WaitTimeout(2*time.Second) && tok.Error() == nil
	})
	t.Cleanup(func() { m.client.Disconnect(100) })
	tok := m.client.Subscribe("$hw/events/device/+/+/#", 1, func(_ paho.Client, msg paho.Message) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.got[msg.Topic()] = append(m.got[msg.Topic()], string(msg.Payload()))
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing the mapper: %v", tok.Error())
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
	payload := fmt.Sprintf(`{"event_id":"e-%d","timestamp":%d,"twin":{%q:{"actual":{"value":%q,"metadata":{"timestamp":%d}}}}}`,
		time.Now().UnixNano(), time.Now().UnixMilli(), "setpoint", value, time.Now().UnixMilli())
	tok := m.client.Publish(twin.DeviceTopic(ns, "hall", twin.OpTwinUpdate), 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		m.t.Fatalf("publishing a report: %v", tok.Error())
	}
}

// TestAMapperGetsDeltasAndItsReportsReachTheCloudAcrossAnOutage: the desired value of a
// device travels cloud → CloudHub → EdgeHub → DeviceTwin → the internal MQTT broker → a mapper
// as a delta; the mapper's reports are accepted into the outbox and acknowledged by the cloud,
// and reports made while the cloud is away wait in the outbox and reach it after it returns.
func TestAMapperGetsDeltasAndItsReportsReachTheCloudAcrossAnOutage(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	model := &v1alpha1.DeviceModel{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "thermostat"}, Spec: v1alpha1.DeviceModelSpec{
		Protocol: "simulator", Properties: []v1alpha1.ModelProperty{
			{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite, Minimum: new("5"), Maximum: new("30")}}}}
	if err := k8s.Create(ctx, model); err != nil {
		t.Fatal(err)
	}
	createDevice(t, ns, "hall", "edge-m", "21.5")

	cc := startCloudcore(t, freePort(t))
	dataDir := t.TempDir()
	broker := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if out, code := edgecoreCmd(t, "join", "--server", cc.serverURL(), "--token", token(t, "edge-m"), "--name", "edge-m",
		"--data-dir", dataDir, "--broker-address", broker); code != 0 {
		t.Fatalf("join exited %d:\n%s", code, out)
	}
	edgeMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics)
	waitFor(t, "the edge to be synced", func() bool { return metric(edgeMetrics, "edgetwin_edgehub_synced") == 1 })

	m := newMapper(t, broker)
	deltaTopic := twin.DeviceTopic(ns, "hall", twin.OpTwinUpdateDelta)
	waitFor(t, "the mapper to get the setpoint delta", func() bool {
		var d twin.Delta
		return json.Unmarshal([]byte(m.last(deltaTopic)), &d) == nil && d.Delta["setpoint"] == "21.5"
	})

	// The mapper reports; the value is accepted and acknowledged by the cloud.
	m.report(ns, "21.5")
	waitFor(t, "the report to be accepted", func() bool { return metric(edgeMetrics, "edgetwin_twin_reports_accepted_total") == 1 })
	waitFor(t, "the outbox to drain", func() bool { return metric(edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })

	// A value outside the model is refused with a result naming the property, and not queued.
	m.report(ns, "99")
	resultTopic := twin.DeviceTopic(ns, "hall", twin.OpTwinUpdateResult)
	waitFor(t, "the refusal", func() bool {
		return strings.Contains(m.last(resultTopic), "setpoint") && strings.Contains(m.last(resultTopic), `"code":400`)
	})

	// The cloud goes away; reports wait in the outbox, coalesced to the newest per property.
	cc.stop(t)
	waitFor(t, "the edge to notice", func() bool { return metric(edgeMetrics, "edgetwin_edgehub_connected") == 0 })
	m.report(ns, "20")
	m.report(ns, "20.5")
	waitFor(t, "both offline reports to be accepted", func() bool { return metric(edgeMetrics, "edgetwin_twin_reports_accepted_total") == 3 })
	if got := metric(edgeMetrics, "edgetwin_edgehub_outbox_pending"); got != 1 {
		t.Fatalf("outbox holds %v reports while offline, want the newest one only", got)
	}
	// The desired value changes while the edge is away; after the cloud returns the mapper
	// gets the new delta and the offline report is acknowledged.
	patchSetpoint(t, ns, "hall", "19")
	startCloudcore(t, cc.hubPort)
	waitFor(t, "the offline report to reach the cloud", func() bool { return metric(edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })
	waitFor(t, "the mapper to get the new delta", func() bool {
		var d twin.Delta
		return json.Unmarshal([]byte(m.last(deltaTopic)), &d) == nil && d.Delta["setpoint"] == "19"
	})
}
