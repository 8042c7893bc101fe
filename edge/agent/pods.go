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
	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/containerd"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

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

// listener routes what EdgeHub stores: devices to DeviceTwin, pods and what they use to Edged.
type listener struct {
	devices hub.Listener
	pods    hub.Listener
}

func (l listener) target(kind wire.Kind) hub.Listener {
	switch kind {
	case wire.KindDevice:
		return l.devices
	case wire.KindPod, wire.KindConfigMap, wire.KindSecret, wire.KindServiceAccountToken:
		return l.pods
	}
	return nil
}

// ObjectsChanged hands each component its part of one commit, in order: as one batch to a
// component that takes batches (DeviceTwin writes its twins in one transaction), one by one
// otherwise.
func (l listener) ObjectsChanged(changes []hub.Change) {
	var devices, pods []hub.Change
	for _, c := range changes {
		switch {
		case c.Ref.Kind == wire.KindDevice:
			devices = append(devices, c)
		case l.target(c.Ref.Kind) != nil:
			pods = append(pods, c)
		}
	}
	deliver(l.devices, devices)
	deliver(l.pods, pods)
}

// deliver hands changes to a listener, as one batch if it takes batches.
func deliver(target hub.Listener, changes []hub.Change) {
	if target == nil || len(changes) == 0 {
		return
	}
	if bl, ok := target.(hub.BatchListener); ok {
		bl.ObjectsChanged(changes)
		return
	}
	for _, c := range changes {
		if c.Deleted {
			target.ObjectDeleted(c.Ref)
		} else {
			target.ObjectStored(c.Ref, c.Body)
		}
	}
}

func (l listener) ObjectStored(ref wire.ObjectRef, body []byte) {
	if t := l.target(ref.Kind); t != nil {
		t.ObjectStored(ref, body)
	}
}

func (l listener) ObjectDeleted(ref wire.ObjectRef) {
	if t := l.target(ref.Kind); t != nil {
		t.ObjectDeleted(ref)
	}
}
