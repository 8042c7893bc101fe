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

package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgetwin/edgetwin/cloud/nodestatus"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// The integration suite: one real kube-apiserver and etcd for the package, the generated CRDs
// installed, and the manager running the reconcilers exactly as cloudcore wires them.
var (
	k8s        client.Client // talks to the API server directly, not through the manager's cache
	kubeconfig string        // an admin kubeconfig for real kubectl
	cfg        *rest.Config  // the admin config, for the API server's own /metrics
	mgrClient  client.Client // the manager's client (reads from its cache), as cloudcore's writers use it

	// deviceReports applies edge reports with the default budget, as cloudcore wires it.
	deviceReports *DeviceReports

	// sessions plays CloudHub: a real session tracker fed by the tests, and a record of the
	// sessions the controllers asked to close. clk drives the EdgeNode controller's time.
	sessions   = &testSessions{tracker: nodestatus.NewTracker(clk), closed: map[string]string{}}
	clk        = clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	suiteStart = clk.Now()
)

const (
	heartbeatInterval = time.Minute
	gracePeriod       = 5 * time.Minute
)

type testSessions struct {
	tracker *nodestatus.Tracker
	mu      sync.Mutex
	closed  map[string]string // node → reason
	holding map[string]bool   // node → held; a node absent here has no session
}

// Holds plays CloudHub's answer: a node the test set holding is connected, and holds every
// object exactly while its value is true.
func (s *testSessions) Holds(node string, _ wire.ObjectRef) (connected, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, connected = s.holding[node]
	return connected, held
}

// setHolding sets what Holds answers for node; nil means the node has no session.
func (s *testSessions) setHolding(node string, held *bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holding == nil {
		s.holding = map[string]bool{}
	}
	if held == nil {
		delete(s.holding, node)
		return
	}
	s.holding[node] = *held
}

func (s *testSessions) Tracker() *nodestatus.Tracker { return s.tracker }

func (s *testSessions) Disconnect(node, reason, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed[node] = reason
}

func (s *testSessions) closedReason(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[node]
}

const (
	waitTimeout = 20 * time.Second
	pollEvery   = 50 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapLevel())))
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration suite:", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()

	if k8s, err = cp.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "integration suite:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "edgetwin-controllers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 k8s.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the manager:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go sessions.tracker.Run(ctx.Done())
	cfg, mgrClient = cp.Config, mgr.GetClient()
	deviceReports = NewDeviceReports(mgrClient, ReportsOptions{})
	opts := Options{Sessions: sessions, Clock: clk, HeartbeatInterval: heartbeatInterval, GracePeriod: gracePeriod,
		DeviceStatus: deviceReports}
	if err := SetupWithManager(ctx, mgr, opts); err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mgr.Add(deviceReports); err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		code = 1
	}
	return code
}

// zapLevel keeps the manager quiet unless EDGETWIN_TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("EDGETWIN_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// newNamespace creates a namespace for one test, so tests cannot see each other's objects.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

// eventually returns a gomega for t with the suite's timeouts.
func eventually(t *testing.T, f any) gomega.AsyncAssertion {
	return gomega.NewWithT(t).Eventually(f).WithTimeout(waitTimeout).WithPolling(pollEvery)
}
