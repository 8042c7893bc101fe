//go:build !noedged

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

package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/containerd/containerdtest"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

func TestNoRuntimeNoEdged(t *testing.T) {
	cfg := config.New("https://cloud.example:10350", "edge-1")
	p, err := newPods(context.Background(), t.TempDir(), cfg, nil, nil, logr.Discard())
	if err != nil || p != nil {
		t.Fatalf("newPods without a runtime = %v, %v; want no Edged and no error", p, err)
	}
}

func TestARuntimeThatCannotStartYetLeavesTheRestRunningAndPodsStartOnceItDoes(t *testing.T) {
	dir := t.TempDir()
	store, err := meta.Open(filepath.Join(dir, "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// A pod the cloud sent before this start, waiting in the store.
	body := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"waiting","namespace":"default","uid":"u-1"},` +
		`"spec":{"hostNetwork":true,"containers":[{"name":"app","image":"` + containerdtest.WorkloadImage + `","imagePullPolicy":"Never"}]}}`)
	if err := store.PutObject(wire.ObjectRef{Kind: wire.KindPod, Namespace: "default", Name: "waiting", Version: "v1"}, body); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "cri.sock") // nothing listens here yet
	cfg := config.New("https://cloud.example:10350", "edge-1")
	cfg.Edged = &config.Edged{RuntimeEndpoint: "unix://" + socket}
	rt := &podRuntime{log: logr.Discard(), retry: 20 * time.Millisecond, start: func(ctx context.Context) (*pods, error) {
		return newPods(ctx, dir, cfg, store, func() {}, logr.Discard())
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitUntil(t, "the runtime's failure to be known", func() bool { return rt.problem() != "" })
	if rt.current() != nil {
		t.Fatal("Edged runs without a runtime")
	}
	// EdgeHub's notifications meanwhile are dropped, not fatal: the store has the objects.
	rt.ObjectStored(wire.ObjectRef{Kind: wire.KindPod, Namespace: "default", Name: "waiting", Version: "v1"}, body)
	rt.ObjectDeleted(wire.ObjectRef{Kind: wire.KindSecret, Namespace: "default", Name: "gone"})

	// The runtime comes up; Edged starts and runs the stored pod.
	env := containerdtest.Start(t)
	if err := os.Symlink(env.Config().Socket(), socket); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Edged to run the stored pod", func() bool {
		p := rt.current()
		return p != nil && p.edged.Stats().Pods == 1 && rt.problem() == ""
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
