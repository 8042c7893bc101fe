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
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// computeStatus derives the pod's status from what the runtime holds and the reasons Edged
// recorded for containers it could not start. Transition times and the start time are carried
// over from the last status, so an unchanged pod has an unchanged status and is not reported.
func (e *Edged) computeStatus(pod *v1.Pod, w *podWorker, view *podView) *v1.PodStatus {
	now := metav1.NewTime(e.clock.Now().Truncate(time.Second))
	old := w.lastStatus
	if old == nil {
		old = &v1.PodStatus{}
	}
	st := &v1.PodStatus{HostIP: e.hostIP, QOSClass: qosClass(pod)}
	if e.hostIP != "" {
		st.HostIPs = []v1.HostIP{{IP: e.hostIP}}
	}
	st.StartTime = startTime(old, view, now)
	e.setPodIPs(st, pod, view)
	current := view.currentID()
	initialized := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := e.containerStatus(w, c, view, current)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	allReady := true
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := e.containerStatus(w, c, view, "")
		if !initialized && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonContainerCreating {
			cs.State.Waiting.Reason = reasonPodInitializing
		}
		allReady = allReady && cs.Ready
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.Phase = podPhase(pod, st, initialized)
	ready := allReady && initialized && view.currentReady && !isTerminal(st.Phase)
	cond := func(t v1.PodConditionType, ok bool, reason string) {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, Reason: reason, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason = v1.ConditionTrue, ""
		}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	finished := ""
	if isTerminal(st.Phase) {
		finished = "PodCompleted"
	}
	cond(v1.PodReadyToStartContainers, view.currentReady, "")
	cond(v1.PodInitialized, initialized, orDefault(finished, "ContainersNotInitialized"))
	cond(v1.ContainersReady, ready, orDefault(finished, "ContainersNotReady"))
	cond(v1.PodReady, ready, orDefault(finished, "ContainersNotReady"))
	cond(v1.PodScheduled, true, "")
	if w.sandboxError != "" {
		st.Message = w.sandboxError
	}
	return st
}

// startTime is the last status's start time, else the first sandbox's creation (so a restarted
// Edged reports the same), else now.
func startTime(old *v1.PodStatus, view *podView, now metav1.Time) *metav1.Time {
	if old.StartTime != nil {
		return old.StartTime
	}
	if len(view.sandboxes) > 0 && view.sandboxes[len(view.sandboxes)-1].CreatedAt > 0 {
		t := metav1.NewTime(time.Unix(0, view.sandboxes[len(view.sandboxes)-1].CreatedAt).Truncate(time.Second))
		return &t
	}
	return &now
}

// setPodIPs sets the pod's IPs once its sandbox runs: the node's for a host-network pod.
func (e *Edged) setPodIPs(st *v1.PodStatus, pod *v1.Pod, view *podView) {
	ips := view.podIPs
	if pod.Spec.HostNetwork && e.hostIP != "" {
		ips = []string{e.hostIP}
	}
	if view.currentReady && len(ips) > 0 {
		st.PodIP = ips[0]
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, v1.PodIP{IP: ip})
		}
	}
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// containerStatus is one container's status: its newest container's state, the one before as
// the last state, and the waiting reason Edged recorded when it could not (re)start it.
func (e *Edged) containerStatus(w *podWorker, c *v1.Container, view *podView, sandbox string) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: c.Name, Image: c.Image}
	latest, previous := view.latest(c.Name, sandbox)
	waiting := w.waiting[c.Name]
	if w.sandboxError != "" && latest == nil {
		waiting = waitingState{reasonCreatePodSandbox, w.sandboxError}
	}
	if latest == nil {
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: orDefault(waiting.reason, reasonContainerCreating), Message: waiting.message}
		return cs
	}
	cs.RestartCount = int32(latest.Metadata.GetAttempt())
	cs.ContainerID = e.runtimeName + "://" + latest.Id
	cs.ImageID = latest.status.GetImageRef()
	if cs.ImageID == "" {
		cs.ImageID = latest.ImageRef
	}
	started := false
	switch latest.state() {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: nanoTime(latest.status.GetStartedAt())}
		started = latest.PodSandboxId == view.currentID() && view.currentReady
		cs.Ready = started
		if previous != nil {
			cs.LastTerminationState = terminated(previous)
		}
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: orDefault(waiting.reason, reasonContainerCreating), Message: waiting.message}
		if previous != nil {
			cs.LastTerminationState = terminated(previous)
		}
	default:
		if waiting.reason != "" {
			// It exited and waits to restart.
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: waiting.reason, Message: waiting.message}
			cs.LastTerminationState = terminated(latest)
		} else {
			cs.State = terminated(latest)
			if previous != nil {
				cs.LastTerminationState = terminated(previous)
			}
		}
	}
	cs.Started = &started
	return cs
}

func terminated(c *containerView) v1.ContainerState {
	st := c.status
	return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
		ExitCode: st.GetExitCode(), Reason: st.GetReason(), Message: st.GetMessage(),
		StartedAt: nanoTime(st.GetStartedAt()), FinishedAt: nanoTime(st.GetFinishedAt()),
		ContainerID: "containerd://" + c.Id,
	}}
}

func nanoTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns).Truncate(time.Second))
}

// podPhase is kubelet's getPhase: Pending until every container has run, Running while any
// runs or will restart, Succeeded or Failed once all have finished for good.
func podPhase(pod *v1.Pod, st *v1.PodStatus, initialized bool) v1.PodPhase {
	for _, cs := range st.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
			return v1.PodFailed
		}
	}
	if !initialized {
		return v1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == v1.RestartPolicyAlways:
			return v1.PodRunning
		case stopped == succeeded:
			return v1.PodSucceeded
		case pod.Spec.RestartPolicy == v1.RestartPolicyNever:
			return v1.PodFailed
		}
		return v1.PodRunning
	}
	return v1.PodPending
}

// qosClass is the pod's quality of service class, from its containers' requests and limits.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	hasAny, guaranteed := false, true
	for _, c := range append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			hasAny = hasAny || hasReq || hasLim
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !hasAny:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}
