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
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Waiting reasons, kubelet's words.
const (
	reasonContainerCreating     = "ContainerCreating"
	reasonPodInitializing       = "PodInitializing"
	reasonCrashLoopBackOff      = "CrashLoopBackOff"
	reasonErrImagePull          = "ErrImagePull"
	reasonImagePullBackOff      = "ImagePullBackOff"
	reasonErrImageNeverPull     = "ErrImageNeverPull"
	reasonCreateContainerConfig = "CreateContainerConfigError"
	reasonCreateContainer       = "CreateContainerError"
	reasonRunContainer          = "RunContainerError"
	// reasonCreatePodSandbox is the waiting reason of every container while the sandbox cannot
	// be created (kubelet shows this only as an event; Edged has no events).
	reasonCreatePodSandbox = "CreatePodSandboxError"
)

// podView is what the runtime holds for one pod.
type podView struct {
	// sandboxes, newest first; current is the newest.
	sandboxes    []*runtimeapi.PodSandbox
	current      *runtimeapi.PodSandbox
	currentReady bool
	podIPs       []string
	// containers, newest first.
	containers []containerView
}

type containerView struct {
	*runtimeapi.Container
	status *runtimeapi.ContainerStatus
}

func (c containerView) state() runtimeapi.ContainerState {
	if c.status != nil {
		return c.status.State
	}
	return c.State
}

// latest returns the newest container of a name (in sandbox, or in any when sandbox is "") and
// the one before it.
func (v *podView) latest(name, sandbox string) (latest, previous *containerView) {
	for i := range v.containers {
		c := &v.containers[i]
		if c.Metadata.GetName() != name || (sandbox != "" && c.PodSandboxId != sandbox) {
			continue
		}
		if latest == nil {
			latest = c
		} else {
			return latest, c
		}
	}
	return latest, nil
}

func (v *podView) podIP() string {
	if len(v.podIPs) == 0 {
		return ""
	}
	return v.podIPs[0]
}

func (v *podView) currentID() string {
	if v.current == nil {
		return ""
	}
	return v.current.Id
}

func uidSelector(uid string) map[string]string {
	return map[string]string{labelPodUID: uid, LabelManaged: managedValue}
}

// observe reads the pod's sandboxes and containers from the runtime.
func (e *Edged) observe(ctx context.Context, uid string) (*podView, error) {
	sandboxes, err := e.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: uidSelector(uid)})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	slices.SortFunc(sandboxes, func(a, b *runtimeapi.PodSandbox) int {
		if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
			return int(b.Metadata.GetAttempt()) - int(a.Metadata.GetAttempt())
		}
		return int(b.CreatedAt - a.CreatedAt)
	})
	v := &podView{sandboxes: sandboxes}
	if len(sandboxes) > 0 {
		v.current = sandboxes[0]
		st, err := e.runtime.PodSandboxStatus(ctx, v.current.Id, false)
		if err != nil {
			return nil, fmt.Errorf("reading sandbox %s: %w", v.current.Id, err)
		}
		v.currentReady = st.Status.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
		if n := st.Status.GetNetwork(); n != nil && n.Ip != "" {
			v.podIPs = append(v.podIPs, n.Ip)
			for _, ip := range n.AdditionalIps {
				v.podIPs = append(v.podIPs, ip.Ip)
			}
		}
	}
	containers, err := e.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: uidSelector(uid)})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range containers {
		st, err := e.runtime.ContainerStatus(ctx, c.Id, false)
		if err != nil {
			// Removed between the list and the status: it no longer counts.
			continue
		}
		v.containers = append(v.containers, containerView{Container: c, status: st.Status})
	}
	slices.SortFunc(v.containers, func(a, b containerView) int {
		if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
			return int(b.Metadata.GetAttempt()) - int(a.Metadata.GetAttempt())
		}
		return int(b.CreatedAt - a.CreatedAt)
	})
	return v, nil
}

// syncPod drives one pod towards its spec, then reports its status if it changed.
func (e *Edged) syncPod(ctx context.Context, w *podWorker, pod *v1.Pod) {
	e.stats.syncs.Add(1)
	log := e.log.WithValues("pod", pod.Namespace+"/"+pod.Name)
	view, err := e.observe(ctx, w.uid)
	if err != nil {
		e.stats.syncErrors.Add(1)
		log.Error(err, "Could not read the pod from the runtime")
		return
	}
	if e.sync(ctx, w, pod, view, log) {
		if view, err = e.observe(ctx, w.uid); err != nil {
			e.stats.syncErrors.Add(1)
			log.Error(err, "Could not read the pod from the runtime")
			return
		}
	}
	status := e.computeStatus(pod, w, view)
	if isTerminal(status.Phase) && view.currentReady {
		// A finished pod keeps its containers (for their status and logs) but not its sandbox.
		if err := e.runtime.StopPodSandbox(ctx, view.current.Id); err != nil {
			log.Error(err, "Could not stop the sandbox of a finished pod")
		}
	}
	e.report(w, pod, status)
}

func isTerminal(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }

// sync acts on the runtime and says whether it changed anything.
func (e *Edged) sync(ctx context.Context, w *podWorker, pod *v1.Pod, view *podView, log logr.Logger) bool {
	if isTerminal(e.computeStatus(pod, w, view).Phase) {
		return false
	}
	changed := false
	if view.current == nil || !view.currentReady {
		// kubelet's rule: a pod that must not restart does not get a new sandbox once its
		// containers have run.
		if view.current != nil && pod.Spec.RestartPolicy == v1.RestartPolicyNever && len(view.containers) > 0 {
			return false
		}
		if !e.createSandbox(ctx, w, pod, view, log) {
			return true
		}
		var err error
		if view, err = e.observe(ctx, w.uid); err != nil {
			log.Error(err, "Could not read the pod from the runtime")
			return true
		}
		changed = true
	}
	volumes, volErr := e.setupVolumes(pod, view.podIP())
	if volErr != nil {
		log.V(1).Info("A volume is not ready", "err", volErr.Error())
	}
	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		latest, _ := view.latest(c.Name, view.current.Id)
		if latest != nil && latest.state() == runtimeapi.ContainerState_CONTAINER_EXITED && latest.status.GetExitCode() == 0 {
			continue
		}
		initDone = false
		if latest != nil && latest.state() == runtimeapi.ContainerState_CONTAINER_EXITED && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
			break
		}
		changed = e.syncContainer(ctx, w, pod, c, view, latest, volumes, volErr, true) || changed
		break
	}
	if !initDone {
		return changed
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		latest, _ := view.latest(c.Name, "")
		changed = e.syncContainer(ctx, w, pod, c, view, latest, volumes, volErr, false) || changed
	}
	return e.prune(ctx, pod, view, log) || changed
}

// createSandbox stops what is left of the pod's previous sandbox and runs a new one. It says
// whether the new sandbox runs.
func (e *Edged) createSandbox(ctx context.Context, w *podWorker, pod *v1.Pod, view *podView, log logr.Logger) bool {
	key := w.uid + "/sandbox"
	if e.backoff.inBackoff(key) {
		return false
	}
	for _, c := range view.containers {
		if c.state() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := e.runtime.StopContainer(ctx, c.Id, gracePeriod(pod)); err != nil {
				log.Error(err, "Could not stop a container of the previous sandbox", "container", c.Metadata.GetName())
			}
		}
	}
	holds := map[string]bool{}
	for _, c := range view.containers {
		holds[c.PodSandboxId] = true
	}
	for _, sb := range view.sandboxes {
		switch {
		case !holds[sb.Id]:
			// Nothing in it is needed for the pod's status (a sandbox whose creation failed).
			if err := e.removeSandbox(ctx, sb.Id); err != nil {
				log.Error(err, "Could not remove the previous sandbox", "sandbox", sb.Id)
			}
		case sb.State == runtimeapi.PodSandboxState_SANDBOX_READY:
			if err := e.runtime.StopPodSandbox(ctx, sb.Id); err != nil {
				log.Error(err, "Could not stop the previous sandbox", "sandbox", sb.Id)
			}
		}
	}
	var attempt uint32
	if view.current != nil {
		attempt = view.current.Metadata.GetAttempt() + 1
	}
	id, err := e.runtime.RunPodSandbox(ctx, e.sandboxConfig(pod, attempt), "")
	if err != nil {
		e.backoff.next(key, e.clock.Now())
		w.sandboxError = fmt.Sprintf("creating the pod sandbox: %v", err)
		log.Error(err, "Could not create the pod sandbox")
		return false
	}
	w.sandboxError = ""
	log.Info("Started a pod sandbox", "sandbox", id, "attempt", attempt)
	return true
}

// syncContainer starts, restarts or leaves one container, and says whether it changed anything.
func (e *Edged) syncContainer(ctx context.Context, w *podWorker, pod *v1.Pod, c *v1.Container, view *podView,
	latest *containerView, volumes map[string]string, volErr error, init bool) bool {
	attempt := uint32(0)
	if latest != nil {
		attempt = latest.Metadata.GetAttempt() + 1
	}
	if latest != nil {
		switch latest.state() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			if latest.PodSandboxId == view.current.Id && latest.Annotations[annotationHash] == containerHash(c) {
				delete(w.waiting, c.Name)
				return false
			}
			// The spec changed (or it runs in an old sandbox): replace it.
			if err := e.runtime.StopContainer(ctx, latest.Id, gracePeriod(pod)); err != nil {
				e.log.Error(err, "Could not stop a container to replace it", "container", c.Name)
				return false
			}
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			// Created but never started (the start failed): start over with the same attempt.
			if err := e.runtime.RemoveContainer(ctx, latest.Id); err != nil {
				return false
			}
			attempt = latest.Metadata.GetAttempt()
			if e.backoff.inBackoff(w.uid + "/" + c.Name) {
				return true
			}
		default:
			exitCode := latest.status.GetExitCode()
			if !shouldRestart(pod.Spec.RestartPolicy, exitCode, init) {
				delete(w.waiting, c.Name)
				return false
			}
			key := w.uid + "/" + c.Name
			finished := time.Unix(0, latest.status.GetFinishedAt())
			if in, until := e.backoff.inBackoffSince(key, finished); in {
				w.waiting[c.Name] = waitingState{reasonCrashLoopBackOff, fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					until.Sub(finished).Round(time.Second), c.Name, pod.Name, pod.Namespace, pod.UID)}
				return false
			}
			e.backoff.next(key, finished)
		}
	}
	return e.startContainer(ctx, w, pod, c, view, attempt, volumes, volErr, init)
}

// shouldRestart applies the restart policy to a container that exited.
func shouldRestart(policy v1.RestartPolicy, exitCode int32, init bool) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	// Always: an app container restarts whatever its exit; an init container only on failure.
	return !init || exitCode != 0
}

// startContainer pulls the image if needed, then creates and starts the container.
func (e *Edged) startContainer(ctx context.Context, w *podWorker, pod *v1.Pod, c *v1.Container, view *podView,
	attempt uint32, volumes map[string]string, volErr error, init bool) bool {
	sandboxCfg := e.sandboxConfig(pod, view.current.Metadata.GetAttempt())
	imageRef, ok := e.ensureImage(ctx, w, c, sandboxCfg)
	if !ok {
		return false
	}
	cfg, err := e.containerConfig(pod, c, attempt, imageRef, view.podIP(), volumes, volErr, init)
	if err != nil {
		w.waiting[c.Name] = waitingState{reasonCreateContainerConfig, err.Error()}
		return false
	}
	id, err := e.runtime.CreateContainer(ctx, view.current.Id, cfg, sandboxCfg)
	if err != nil {
		w.waiting[c.Name] = waitingState{reasonCreateContainer, err.Error()}
		return false
	}
	if err := e.runtime.StartContainer(ctx, id); err != nil {
		w.waiting[c.Name] = waitingState{reasonRunContainer, err.Error()}
		e.backoff.next(w.uid+"/"+c.Name, e.clock.Now())
		return true
	}
	e.stats.containerStarts.Add(1)
	delete(w.waiting, c.Name)
	e.log.V(1).Info("Started a container", "pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "restartCount", attempt)
	return true
}

// ensureImage makes the container's image present according to its pull policy and returns
// its reference. An image that is present is used when a pull fails even under Always: an
// edge node that lost its registry must still run what it has.
func (e *Edged) ensureImage(ctx context.Context, w *podWorker, c *v1.Container,
	sandboxCfg *runtimeapi.PodSandboxConfig) (string, bool) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	var present string
	if st, err := e.images.ImageStatus(ctx, spec, false); err == nil && st.Image != nil {
		present = st.Image.Id
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = defaultPullPolicy(c.Image)
	}
	if present != "" && policy != v1.PullAlways {
		return present, true
	}
	if policy == v1.PullNever {
		w.waiting[c.Name] = waitingState{reasonErrImageNeverPull,
			fmt.Sprintf("container image %q is not present with pull policy of Never", c.Image)}
		return "", false
	}
	key := w.uid + "/pull/" + c.Image
	if e.backoff.inBackoff(key) {
		if present != "" {
			return present, true
		}
		w.waiting[c.Name] = waitingState{reasonImagePullBackOff, fmt.Sprintf("Back-off pulling image %q", c.Image)}
		return "", false
	}
	ref, err := e.images.PullImage(ctx, spec, nil, sandboxCfg)
	if err != nil {
		e.stats.pullFailures.Add(1)
		e.backoff.next(key, e.clock.Now())
		if present != "" {
			e.log.Info("Pulling failed; running the image present", "image", c.Image, "err", err.Error())
			return present, true
		}
		w.waiting[c.Name] = waitingState{reasonErrImagePull, fmt.Sprintf("pulling %q: %v", c.Image, err)}
		return "", false
	}
	e.stats.pulls.Add(1)
	e.backoff.forget(key)
	return ref, true
}

// defaultPullPolicy is the API server's default: Always for :latest or no tag.
func defaultPullPolicy(image string) v1.PullPolicy {
	if strings.Contains(image, "@") {
		return v1.PullIfNotPresent
	}
	slash := strings.LastIndexByte(image, '/')
	colon := strings.LastIndexByte(image, ':')
	if colon < slash+1 || image[colon+1:] == "latest" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// prune removes containers older than the previous one of each name, and the pod's old
// sandboxes once the newest of every container runs in the current one.
func (e *Edged) prune(ctx context.Context, pod *v1.Pod, view *podView, log logr.Logger) bool {
	changed := false
	seen := map[string]int{}
	for _, c := range view.containers {
		name := c.Metadata.GetName()
		seen[name]++
		if seen[name] > 2 && c.state() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := e.runtime.RemoveContainer(ctx, c.Id); err == nil {
				changed = true
			}
		}
	}
	if len(view.sandboxes) < 2 {
		return changed
	}
	for i := range pod.Spec.Containers {
		latest, _ := view.latest(pod.Spec.Containers[i].Name, "")
		if latest == nil || latest.PodSandboxId != view.current.Id {
			return changed
		}
	}
	for _, sb := range view.sandboxes[1:] {
		if err := e.removeSandbox(ctx, sb.Id); err != nil {
			log.Error(err, "Could not remove an old sandbox", "sandbox", sb.Id)
			continue
		}
		changed = true
	}
	return changed
}

func (e *Edged) removeSandbox(ctx context.Context, id string) error {
	if err := e.runtime.StopPodSandbox(ctx, id); err != nil {
		return err
	}
	return e.runtime.RemovePodSandbox(ctx, id)
}

// killPod stops the pod's containers (each given grace seconds) and removes its sandboxes.
func (e *Edged) killPod(ctx context.Context, uid string, grace int64) error {
	containers, err := e.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: uidSelector(uid)})
	if err != nil {
		return err
	}
	for _, c := range containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := e.runtime.StopContainer(ctx, c.Id, grace); err != nil {
				return fmt.Errorf("stopping container %s: %w", c.Metadata.GetName(), err)
			}
		}
	}
	sandboxes, err := e.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: uidSelector(uid)})
	if err != nil {
		return err
	}
	for _, sb := range sandboxes {
		if err := e.removeSandbox(ctx, sb.Id); err != nil {
			return fmt.Errorf("removing sandbox %s: %w", sb.Id, err)
		}
	}
	return nil
}

// report puts the pod's status in the outbox when it differs from the last one reported.
func (e *Edged) report(w *podWorker, pod *v1.Pod, status *v1.PodStatus) {
	w.lastStatus = status
	raw, err := json.Marshal(status)
	if err != nil {
		return
	}
	if string(raw) == string(w.lastReport) {
		return
	}
	if err := e.cfg.Status.PodStatus(pod.Namespace, pod.Name, wire.PodStatusReport{UID: string(pod.UID), Status: raw}); err != nil {
		e.log.Error(err, "Could not queue a pod's status", "pod", pod.Namespace+"/"+pod.Name)
		return
	}
	e.stats.statusReports.Add(1)
	w.lastReport = raw
}
