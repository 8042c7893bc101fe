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
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/cloud/projection"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
	"github.com/edgetwin/edgetwin/test/harness"
)

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "link-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createDevice(t *testing.T, ns, name, node, setpoint string) {
	t.Helper()
	d := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.DeviceSpec{
		ModelRef: v1alpha1.ModelReference{Name: "thermostat"}, NodeName: node,
		Properties: []v1alpha1.DeviceProperty{{Name: "setpoint", Desired: new(setpoint)}}}}
	if err := k8s.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// cloudVersion is the content version the cloud projects for a device right now.
func cloudVersion(t *testing.T, ns, name string) string {
	t.Helper()
	d := &v1alpha1.Device{}
	m := &v1alpha1.DeviceModel{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: d.Spec.ModelRef.Name}, m); err != nil {
		t.Fatal(err)
	}
	o, err := hub.NewObject(wire.KindDevice, ns, name, projection.Merge(d, m))
	if err != nil {
		t.Fatal(err)
	}
	return o.Ref.Version
}

// edgeVersion opens the edge's store (SQLite in WAL mode takes a second reader) and returns the
// version it holds for a device, or "" when it holds none.
func edgeVersion(t *testing.T, dataDir, ns, name string) string {
	t.Helper()
	s, err := meta.Open(filepath.Join(dataDir, "edgecore.db"))
	if err != nil {
		t.Fatalf("opening the edge store: %v", err)
	}
	defer func() { _ = s.Close() }()
	o, found, err := s.GetObject(wire.ObjectRef{Kind: wire.KindDevice, Namespace: ns, Name: name})
	if err != nil || !found {
		return ""
	}
	return o.Ref.Version
}

func token(t *testing.T, node string) string {
	t.Helper()
	ca, err := pki.EnsureCA(context.Background(), k8s, harness.SystemNamespace, "edgetwin-ca")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := join.Create(context.Background(), k8s, harness.SystemNamespace, node, time.Hour, ca)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func connected(t *testing.T, node string) func() bool {
	return func() bool {
		return cl.Kubectl(t, "get", "edgenode", node, "-o", `jsonpath={.status.conditions[?(@.type=="Connected")].status}`) == "True"
	}
}

// TestEdgeNodeJoinsSyncsAndSurvivesRestarts is the link's life: a node joins with a token,
// connects, receives its devices, and stays exactly in step with the cloud through restarts of
// either side; deleting its EdgeNode closes it out.
func TestEdgeNodeJoinsSyncsAndSurvivesRestarts(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	model := &v1alpha1.DeviceModel{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "thermostat"}, Spec: v1alpha1.DeviceModelSpec{
		Protocol: "simulator", Properties: []v1alpha1.ModelProperty{{Name: "setpoint", Type: v1alpha1.PropertyTypeDouble, AccessMode: v1alpha1.AccessModeReadWrite}}}}
	if err := k8s.Create(ctx, model); err != nil {
		t.Fatal(err)
	}
	createDevice(t, ns, "lobby", "edge-1", "21")
	createDevice(t, ns, "elsewhere", "edge-2", "18")

	cc := cl.StartCloudcore(t, harness.FreePort(t))
	dataDir := t.TempDir()
	tok := token(t, "edge-1")

	// Join with the token; a second use of it is refused with a clear error.
	broker := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	out, code := cl.Run(t, "edgecore", "join", "--server", cc.ServerURL(), "--token", tok, "--name", "edge-1", "--data-dir", dataDir,
		"--broker-address", broker)
	if code != 0 || !strings.Contains(out, "node edge-1 joined") {
		t.Fatalf("edgecore join exited %d:\n%s", code, out)
	}
	out, code = cl.Run(t, "edgecore", "join", "--server", cc.ServerURL(), "--token", tok, "--name", "edge-1", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(out, "unknown or already used join token") {
		t.Fatalf("reusing the token: exit %d, output:\n%s", code, out)
	}

	edgeMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	edge := cl.Start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics)
	harness.WaitFor(t, "kubectl to show edge-1 Connected", connected(t, "edge-1"))
	if got := cl.Kubectl(t, "get", "edgenode", "edge-1", "-o", "jsonpath={.status.nodeInfo.agentVersion}"); got == "" || strings.HasPrefix(got, "error") {
		t.Errorf("agent version = %q", got)
	}
	harness.WaitFor(t, "the edge to hold lobby", func() bool { return edgeVersion(t, dataDir, ns, "lobby") == cloudVersion(t, ns, "lobby") })
	if v := edgeVersion(t, dataDir, ns, "elsewhere"); v != "" {
		t.Fatalf("edge-1 holds edge-2's device (version %s)", v)
	}

	// A status-only change sends nothing: after it, a spec change of another device is the
	// one and only upsert CloudHub sends.
	upserts := func() float64 {
		return harness.Metric(cc.MetricsAddr, `edgetwin_cloudhub_messages_total\{direction="out",type="upsert"\}`)
	}
	before := upserts()
	lobby := &v1alpha1.Device{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lobby"}, lobby); err != nil {
		t.Fatal(err)
	}
	lobby.Status.State = v1alpha1.DeviceStateOnline
	lobby.Status.Twins = []v1alpha1.Twin{{Name: "setpoint", Reported: &v1alpha1.TwinValue{Value: "20.5"}}}
	if err := k8s.Status().Update(ctx, lobby); err != nil {
		t.Fatal(err)
	}
	createDevice(t, ns, "marker", "edge-1", "19")
	harness.WaitFor(t, "the edge to hold marker", func() bool { return edgeVersion(t, dataDir, ns, "marker") != "" })
	if got := upserts(); got != before+1 {
		t.Fatalf("CloudHub sent %v upserts for a status change and one new device, want exactly 1", got-before)
	}

	// Restart cloudcore while objects change: the edge reconnects, resyncs and ends with
	// exactly the cloud's state.
	cc.Stop(t)
	patchSetpoint(t, ns, "lobby", "23")
	if err := k8s.Delete(ctx, &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marker"}}); err != nil {
		t.Fatal(err)
	}
	cc = cl.StartCloudcore(t, cc.HubPort)
	harness.WaitFor(t, "the edge to hold the new lobby", func() bool { return edgeVersion(t, dataDir, ns, "lobby") == cloudVersion(t, ns, "lobby") })
	harness.WaitFor(t, "the edge to drop marker", func() bool { return edgeVersion(t, dataDir, ns, "marker") == "" })
	harness.WaitFor(t, "edge-1 Connected again", connected(t, "edge-1"))

	// Restart edgecore with a report in its outbox: the report reaches the cloud and is
	// acknowledged, and nothing the edge already holds is sent again.
	harness.WaitFor(t, "the edge to be synced", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_synced") == 1 })
	edge.Stop(t)
	store, err := meta.Open(filepath.Join(dataDir, "edgecore.db"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"probe": "1"})
	if _, err := store.Enqueue("Probe", ns, "lobby", "probe", body); err != nil {
		t.Fatal(err)
	}
	_ = store.Close()
	before = upserts()
	cl.Start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics)
	harness.WaitFor(t, "the outbox to be acknowledged", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_outbox_pending") == 0 })
	harness.WaitFor(t, "the edge to be synced", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_synced") == 1 })
	if got := upserts(); got != before {
		t.Fatalf("CloudHub re-sent %v upserts to an edge that already held everything", got-before)
	}

	// Deleting the EdgeNode closes the session and refuses the certificate from then on.
	refusals := func() float64 {
		return harness.Metric(cc.MetricsAddr, `edgetwin_cloudhub_refusals_total\{reason="CertificateRefused"\}`)
	}
	refusedBefore := refusals()
	if err := k8s.Delete(ctx, &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the edge to be disconnected", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_connected") == 0 })
	harness.WaitFor(t, "a reconnect with the old certificate to be refused", func() bool { return refusals() > refusedBefore })
}

func patchSetpoint(t *testing.T, ns, name, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"properties":[{"name":"setpoint","desired":%q}]}}`, value)
	if err := k8s.Patch(context.Background(), &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// TestJoinRefusesBadTokens: a token for another node, a malformed one and a wrong secret are
// refused with errors that say which, and none of them writes a config.
func TestJoinRefusesBadTokens(t *testing.T) {
	cc := cl.StartCloudcore(t, harness.FreePort(t))
	good := token(t, "edge-7")
	parts := strings.Split(good, ".")
	wrongSecret := parts[0] + "." + strings.Repeat("a", len(parts[1])) + "." + parts[2]
	tests := []struct {
		name, token, node, want string
	}{
		{"a token bound to another node", good, "edge-8", "bound to another node"},
		{"a malformed token", "not-a-token", "edge-7", "malformed join token"},
		{"a wrong secret", wrongSecret, "edge-7", "wrong join token secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out, code := cl.Run(t, "edgecore", "join", "--server", cc.ServerURL(), "--token", tt.token, "--name", tt.node, "--data-dir", dir)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant an error containing %q", code, out, tt.want)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
				t.Fatalf("a refused join left files: %v", files)
			}
		})
	}
}
