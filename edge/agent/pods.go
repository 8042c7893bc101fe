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
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/edged"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/containerd"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// EdgedBuiltIn says whether this edgecore can run pods: false in a device-only build (build tag
// noedged, pods_noedged.go).
const EdgedBuiltIn = true

// newWorkloads is Edged for the node's config, brought up in the background by run; nil when the
// config names no container runtime.
func newWorkloads(cfg *config.Config, dataDir string, store *meta.Store, notify func(), log logr.Logger) (*podRuntime, error) {
	if !cfg.Edged.Enabled() {
		return nil, nil
	}
	return &podRuntime{log: log.WithName("runtime"), start: func(ctx context.Context) (*pods, error) {
		return newPods(ctx, dataDir, cfg, store, notify, log)
	}}, nil
}

// registerMetrics adds Edged's metrics to edgecore's /metrics.
func (rt *podRuntime) registerMetrics(gauge, counter func(name, help string, f func() float64)) {
	// Zero until Edged runs (the runtime may still be starting).
	stats := func() edged.Stats {
		if p := rt.current(); p != nil {
			return p.edged.Stats()
		}
		return edged.Stats{}
	}
	gauge("edgetwin_edged_up", "1 once the container runtime started and Edged runs.", func() float64 {
		if rt.current() != nil {
			return 1
		}
		return 0
	})
	gauge("edgetwin_edged_pods", "Pods Edged runs (or is still stopping).", func() float64 { return float64(stats().Pods) })
	counter("edgetwin_edged_pod_syncs_total", "Pod syncs.", func() float64 { return float64(stats().Syncs) })
	counter("edgetwin_edged_pod_sync_errors_total", "Pod syncs the runtime failed.", func() float64 { return float64(stats().SyncErrors) })
	counter("edgetwin_edged_container_starts_total", "Containers started, restarts included.",
		func() float64 { return float64(stats().ContainerStarts) })
	counter("edgetwin_edged_image_pulls_total", "Images pulled.", func() float64 { return float64(stats().Pulls) })
	counter("edgetwin_edged_image_pull_failures_total", "Image pulls that failed.", func() float64 { return float64(stats().PullFailures) })
	counter("edgetwin_edged_status_reports_total", "Pod statuses queued for the cloud.",
		func() float64 { return float64(stats().StatusReports) })
	counter("edgetwin_edged_garbage_collected_total", "Pods and containers removed because no stored pod owns them.",
		func() float64 { return float64(stats().GarbageCollected) })
}

// pods is Edged with the containerd edgecore may have started for it.
type pods struct {
	edged      *edged.Edged
	containerd *containerd.Containerd
}

// newPods starts the configured containerd, if any, and creates Edged over the store. It
// returns nil when no runtime is configured: a device-only node needs no containerd.
func newPods(ctx context.Context, dataDir string, cfg *config.Config, store *meta.Store, notify func(),
	log logr.Logger) (*pods, error) {
	ec := cfg.Edged
	if !ec.Enabled() {
		return nil, nil
	}
	p := &pods{}
	endpoint := ec.RuntimeEndpoint
	if cc := ec.Containerd; cc != nil {
		dir := cc.Dir
		if dir == "" {
			dir = "containerd"
		}
		stateDir := cc.StateDir
		if stateDir != "" {
			stateDir = config.Path(dataDir, stateDir)
		}
		c, err := containerd.Start(ctx, containerd.Config{Dir: config.Path(dataDir, dir), StateDir: stateDir,
			PodSubnet: cc.PodSubnet, Bridge: cc.Bridge, SandboxImage: cc.SandboxImage, Snapshotter: cc.Snapshotter})
		if err != nil {
			return nil, err
		}
		for _, img := range cc.Images {
			if err := c.ImportImage(ctx, config.Path(dataDir, img)); err != nil {
				_ = c.Stop()
				return nil, err
			}
		}
		log.Info("Started containerd", "endpoint", c.Endpoint(), "snapshotter", c.Snapshotter(), "log", c.LogFile())
		p.containerd, endpoint = c, c.Endpoint()
	}
	root := ec.RootDir
	if root == "" {
		root = "edged"
	}
	e, err := edged.New(edged.Config{NodeName: cfg.NodeName, RuntimeEndpoint: endpoint, RootDir: config.Path(dataDir, root),
		Source: edged.StoreSource{Store: store, OnInvalid: func(ref wire.ObjectRef, err error) {
			log.Error(err, "Ignoring an unreadable pod", "pod", ref.String())
		}},
		Status:  edged.StoreSink{Store: store, Notify: notify},
		MaxPods: ec.MaxPods, Version: Version, Logger: log.WithName("edged")})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("starting Edged: %w", err)
	}
	p.edged = e
	return p, nil
}

// stop stops the containerd edgecore started; the pods' containers keep running in their
// shims, and the next start finds them.
func (p *pods) stop() {
	if p != nil && p.containerd != nil {
		_ = p.containerd.Stop()
	}
}

// podRuntime brings Edged up in the background and keeps trying while the runtime cannot start
// (containerd missing, misconfigured, its socket not answering yet): a node whose container
// runtime is broken still serves its devices and keeps its link, and its pods start once the
// runtime does. Objects stored meanwhile wait in the store, where Edged reads every pod at start.
type podRuntime struct {
	start func(ctx context.Context) (*pods, error)
	log   logr.Logger
	// retry is the wait after the first failure, doubling up to a minute.
	retry time.Duration

	mu      sync.Mutex
	p       *pods
	lastErr string
}

// current is the running Edged's pods, or nil while it is not up.
func (r *podRuntime) current() *pods {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// ObjectStored implements hub.Listener: Edged hears of it once it runs; until then the store
// keeps it.
func (r *podRuntime) ObjectStored(ref wire.ObjectRef, body []byte) {
	if p := r.current(); p != nil {
		p.edged.ObjectStored(ref, body)
	}
}

// ObjectDeleted implements hub.Listener.
func (r *podRuntime) ObjectDeleted(ref wire.ObjectRef) {
	if p := r.current(); p != nil {
		p.edged.ObjectDeleted(ref)
	}
}

// run starts the runtime and Edged, retrying with back-off, then runs Edged until ctx ends and
// stops the containerd edgecore started.
func (r *podRuntime) run(ctx context.Context) {
	wait := r.retry
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for {
		p, err := r.start(ctx)
		if err == nil {
			r.mu.Lock()
			r.p, r.lastErr = p, ""
			r.mu.Unlock()
			r.log.Info("Edged is running")
			_ = p.edged.Run(ctx)
			p.stop()
			return
		}
		r.mu.Lock()
		repeated := r.lastErr == err.Error()
		r.lastErr = err.Error()
		r.mu.Unlock()
		if !repeated {
			r.log.Error(err, "The container runtime cannot start; devices keep working, pods wait. Retrying", "in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// problem is why the runtime is not up, or "" when it is (or has not been tried yet).
func (r *podRuntime) problem() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}
