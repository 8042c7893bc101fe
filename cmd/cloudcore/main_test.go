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
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the manager's log writes and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCloudcoreRunsTheControllers starts cloudcore's real entry point against a real API server,
// waits for /readyz, and checks that its controllers act on an EdgeNode.
func TestCloudcoreRunsTheControllers(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}

	probe, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--kubeconfig", kubeconfig, "--health-probe-bind-address", probe,
			"--metrics-bind-address", metrics, "--metrics-secure=false",
			"--hub-bind-address", freeAddr(t), "--advertise-address", "127.0.0.1", "--namespace", "default"}, logs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cloudcore returned %v after cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("cloudcore did not stop within 30s of cancel")
		}
		if t.Failed() {
			t.Logf("cloudcore logs:\n%s", logs.String())
		}
	}()

	waitFor(t, "cloudcore /readyz to answer 200", func() bool {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitFor(t, "cloudcore /metrics to serve controller metrics", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return strings.Contains(body.String(), `controller_runtime_reconcile_total{controller="edgenode"`)
	})

	c, err := cp.Client()
	if err != nil {
		t.Fatal(err)
	}
	node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}}
	if err := c.Create(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the EdgeNode controller to mark edge-1 NeverConnected", func() bool {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(node), node); err != nil {
			return false
		}
		cond := meta.FindStatusCondition(node.Status.Conditions, v1alpha1.ConditionConnected)
		return cond != nil && cond.Reason == v1alpha1.ReasonNeverConnected
	})
}

func TestCloudcoreRefusesBadFlags(t *testing.T) {
	// Keep a KUBECONFIG of the developer's machine out of these cases.
	t.Setenv("KUBECONFIG", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown flag", []string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{"a stray argument", []string{"extra"}, `unexpected arguments ["extra"]`},
		{"a kubeconfig that does not exist", []string{"--kubeconfig", "/nonexistent/kubeconfig", "--hub-bind-address", "0"},
			"loading kubeconfig /nonexistent/kubeconfig"},
		{"CloudHub without an advertised address", []string{"--hub-bind-address", ":10350"}, "--advertise-address is required"},
		{"a zero status interval", []string{"--hub-bind-address", "0", "--device-status-interval", "0s"}, "--device-status-interval must be positive"},
		{"a negative write budget", []string{"--hub-bind-address", "0", "--status-write-qps", "-1"}, "--status-write-qps and --status-write-burst must be positive"},
		{"a negative target latency", []string{"--hub-bind-address", "0", "--status-write-target-latency", "-1s"},
			"--status-write-target-latency must not be negative"},
		{"a negative cleanup timeout", []string{"--hub-bind-address", "0", "--device-cleanup-timeout", "-1s"}, "--device-cleanup-timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
