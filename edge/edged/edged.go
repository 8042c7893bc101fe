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

package edged

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/utils/clock"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Defaults for Config.
const (
	DefaultSyncPeriod       = time.Second
	DefaultGCPeriod         = time.Minute
	DefaultNodeStatusPeriod = time.Minute
	DefaultMaxPods          = 110
	// criTimeout bounds each CRI call but image pulls (cri-client adds the stop timeout to
	// StopContainer's).
	criTimeout = 2 * time.Minute
)

// Config configures Edged.
type Config struct {
	// NodeName is this node's name (spec.nodeName of its pods).
	NodeName string
	// RuntimeEndpoint is the CRI endpoint, unix:///path/to/containerd.sock.
	RuntimeEndpoint string
	// RootDir holds the pods' volumes (pods/<uid>/volumes) and container logs (logs/pods).
	RootDir string
	// Source is where pods and the objects they use come from.
	Source Source
	// Status is where pod and node statuses go.
	Status StatusSink
	// SyncPeriod is how often each pod is checked against the runtime (containers that exited);
	// default DefaultSyncPeriod.
	SyncPeriod time.Duration
	// GCPeriod is how often sandboxes and containers no stored pod owns are removed; default
	// DefaultGCPeriod. Garbage is also collected at start.
	GCPeriod time.Duration
	// NodeStatusPeriod is how often the node's status is recomputed (and reported if it changed);
	// default DefaultNodeStatusPeriod.
	NodeStatusPeriod time.Duration
	// BackoffInitial and BackoffMax shape the restart and image pull back-off; default
	// kubelet's 10 s and 5 min.
	BackoffInitial, BackoffMax time.Duration
	// MaxPods is the node's pod capacity; default DefaultMaxPods.
	MaxPods int
	// Version is edgecore's version, reported as the node's kubelet version.
	Version string
	// Clock is the time source (tests use a fake one); default the real clock.
	Clock clock.WithTicker
	// Logger receives Edged's logs.
	Logger logr.Logger
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	if c.RuntimeEndpoint == "" {
		errs = append(errs, errors.New("RuntimeEndpoint is required"))
	}
	if c.RootDir == "" {
		errs = append(errs, errors.New("RootDir is required"))
	}
	if c.Source == nil || c.Status == nil {
		errs = append(errs, errors.New("Source and Status are required"))
	}
	if c.SyncPeriod <= 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.GCPeriod <= 0 {
		c.GCPeriod = DefaultGCPeriod
	}
	if c.NodeStatusPeriod <= 0 {
		c.NodeStatusPeriod = DefaultNodeStatusPeriod
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = DefaultBackoffInitial
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxPods <= 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c, errors.Join(errs...)
}

// Edged runs the node's pods. Its ObjectStored and ObjectDeleted methods are EdgeHub's listener
// calls for pods and the objects they use; they only wake the loop and never block.
type Edged struct {
	cfg     Config
	log     logr.Logger
	clock   clock.WithTicker
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	backoff *backoff
	hostIP  string
	// runtimeName prefixes container IDs in the status (containerd://...).
	runtimeName string
	stats       *stats

	changed chan struct{}

	mu      sync.Mutex
	workers map[string]*podWorker // by pod UID
	// workersCtx is Run's context; nil before Run.
	workersCtx context.Context
	wg         sync.WaitGroup

	lastNode []byte
}

// New connects to the runtime, which must answer (cri-client checks the connection), and
// returns Edged; Run starts it.
func New(cfg Config) (*Edged, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("edged: %w", err)
	}
	if err := os.MkdirAll(cfg.RootDir, 0o755); err != nil {
		return nil, fmt.Errorf("edged: %w", err)
	}
	ctx := context.Background()
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(cfg.RuntimeEndpoint).WithConnectionTimeout(criTimeout).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("edged: connecting to the runtime at %s: %w", cfg.RuntimeEndpoint, err)
	}
	img, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(cfg.RuntimeEndpoint).WithConnectionTimeout(criTimeout).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("edged: connecting to the image service at %s: %w", cfg.RuntimeEndpoint, err)
	}
	return &Edged{
		cfg: cfg, log: cfg.Logger, clock: cfg.Clock, runtime: rt, images: img,
		backoff: newBackoff(cfg.Clock, cfg.BackoffInitial, cfg.BackoffMax),
		hostIP:  nodeIP(), runtimeName: "containerd", stats: newStats(),
		changed: make(chan struct{}, 1), workers: map[string]*podWorker{},
	}, nil
}

// ObjectStored is EdgeHub's listener call: a pod, or an object pods use, changed.
func (e *Edged) ObjectStored(ref wire.ObjectRef, _ []byte) { e.objectChanged(ref) }

// ObjectDeleted is EdgeHub's listener call: a pod, or an object pods use, was deleted.
func (e *Edged) ObjectDeleted(ref wire.ObjectRef) { e.objectChanged(ref) }

func (e *Edged) objectChanged(ref wire.ObjectRef) {
	switch ref.Kind {
	case wire.KindPod:
		select {
		case e.changed <- struct{}{}:
		default:
		}
	case wire.KindConfigMap, wire.KindSecret, wire.KindServiceAccountToken:
		// The pods of the namespace see the new content at their next sync; wake them now.
		e.mu.Lock()
		for _, w := range e.workers {
			if w.namespace == ref.Namespace {
				w.poke()
			}
		}
		e.mu.Unlock()
	}
}

// Run runs the pods until ctx ends. It starts every stored pod at once (the cloud may be
// unreachable), collects garbage, reports the node's status, and then follows the store. When
// it returns the containers keep running, as they do when kubelet stops.
func (e *Edged) Run(ctx context.Context) error {
	if v, err := e.runtime.Version(ctx, "v1"); err == nil {
		e.runtimeName = v.RuntimeName
	} else {
		e.log.Error(err, "The container runtime does not answer yet", "endpoint", e.cfg.RuntimeEndpoint)
	}
	e.mu.Lock()
	e.workersCtx = ctx
	e.mu.Unlock()
	defer e.wg.Wait()
	if err := e.reconcilePods(); err != nil {
		e.log.Error(err, "Could not read the stored pods")
	}
	e.collectGarbage(ctx)
	e.reportNode(ctx)
	gc := e.clock.NewTicker(e.cfg.GCPeriod)
	defer gc.Stop()
	node := e.clock.NewTicker(e.cfg.NodeStatusPeriod)
	defer node.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.changed:
			if err := e.reconcilePods(); err != nil {
				e.log.Error(err, "Could not read the stored pods")
			}
		case <-gc.C():
			e.collectGarbage(ctx)
		case <-node.C():
			e.reportNode(ctx)
		}
	}
}

// reconcilePods starts a worker for every stored pod that has none, gives running workers the
// latest spec, and tells the workers of pods no longer stored to stop them.
func (e *Edged) reconcilePods() error {
	pods, err := e.cfg.Source.Pods()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workersCtx == nil || e.workersCtx.Err() != nil {
		return nil
	}
	want := map[string]*v1.Pod{}
	for _, p := range pods {
		if p.UID == "" {
			e.log.Info("Ignoring a stored pod without a UID", "pod", p.Namespace+"/"+p.Name)
			continue
		}
		want[string(p.UID)] = p
	}
	for uid, w := range e.workers {
		if p, ok := want[uid]; ok {
			w.update(p)
		} else {
			w.delete()
		}
	}
	for uid, p := range want {
		if _, ok := e.workers[uid]; ok {
			continue
		}
		w := newPodWorker(p)
		e.workers[uid] = w
		e.wg.Go(func() { e.runWorker(e.workersCtx, w) })
	}
	return nil
}

// knownPods returns the UIDs of the pods Edged runs or is still stopping.
func (e *Edged) knownPods() map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	known := make(map[string]bool, len(e.workers))
	for uid := range e.workers {
		known[uid] = true
	}
	return known
}

// podWorker drives one pod. The loop in runWorker is the only one that talks to the runtime
// about the pod; update, delete and poke only hand it news.
type podWorker struct {
	uid, namespace string
	wake           chan struct{}

	mu      sync.Mutex
	pod     *v1.Pod
	deleted bool

	// Owned by the worker's loop.
	waiting      map[string]waitingState // by container name
	sandboxError string
	lastStatus   *v1.PodStatus
	lastReport   []byte
}

type waitingState struct{ reason, message string }

func newPodWorker(p *v1.Pod) *podWorker {
	return &podWorker{uid: string(p.UID), namespace: p.Namespace, pod: p, wake: make(chan struct{}, 1),
		waiting: map[string]waitingState{}}
}

func (w *podWorker) update(p *v1.Pod) {
	w.mu.Lock()
	w.pod = p
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) delete() {
	w.mu.Lock()
	w.deleted = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) snapshot() (*v1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.deleted
}

func (e *Edged) runWorker(ctx context.Context, w *podWorker) {
	for {
		pod, deleted := w.snapshot()
		if deleted {
			e.terminatePod(ctx, w, pod)
			return
		}
		e.syncPod(ctx, w, pod)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-e.clock.After(e.cfg.SyncPeriod):
		}
	}
}

// terminatePod stops and removes a deleted pod, then forgets it.
func (e *Edged) terminatePod(ctx context.Context, w *podWorker, pod *v1.Pod) {
	if err := e.killPod(ctx, w.uid, gracePeriod(pod)); err != nil {
		if ctx.Err() != nil {
			return
		}
		e.log.Error(err, "Could not remove a deleted pod; garbage collection retries", "pod", pod.Namespace+"/"+pod.Name)
	}
	_ = os.RemoveAll(e.podDir(w.uid))
	e.backoff.forget(w.uid + "/")
	e.mu.Lock()
	delete(e.workers, w.uid)
	e.mu.Unlock()
	e.log.Info("Removed a deleted pod", "pod", pod.Namespace+"/"+pod.Name, "uid", w.uid)
}

// nodeIP is the node's first global unicast IPv4 address (IPv6 if there is none).
func nodeIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	return v6
}
