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
	"os"
	"path/filepath"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// orphanGrace is the stop timeout of a container whose grace period is not recorded.
const orphanGrace = 30

// collectGarbage removes what carries Edged's label but belongs to no pod it runs: sandboxes
// (with their containers) of pods no longer stored, containers whose sandbox is gone, and the
// volume and log directories of those pods. Anything without Edged's label is left alone.
func (e *Edged) collectGarbage(ctx context.Context) {
	known := e.knownPods()
	managed := map[string]string{LabelManaged: managedValue}
	sandboxes, err := e.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: managed})
	if err != nil {
		e.log.Error(err, "Garbage collection could not list sandboxes")
		return
	}
	orphans := map[string]int64{}
	sandboxIDs := map[string]bool{}
	for _, sb := range sandboxes {
		sandboxIDs[sb.Id] = true
		uid := sb.Labels[labelPodUID]
		if known[uid] {
			continue
		}
		grace := int64(orphanGrace)
		if g, err := strconv.ParseInt(sb.Annotations[annotationGrace], 10, 64); err == nil {
			grace = g
		}
		orphans[uid] = grace
	}
	for uid, grace := range orphans {
		if err := e.killPod(ctx, uid, grace); err != nil {
			e.log.Error(err, "Garbage collection could not remove a pod no longer stored", "uid", uid)
			continue
		}
		e.stats.garbageCollected.Add(1)
		e.log.Info("Garbage collection removed a pod no longer stored", "uid", uid)
	}
	containers, err := e.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: managed})
	if err != nil {
		e.log.Error(err, "Garbage collection could not list containers")
		return
	}
	for _, c := range containers {
		if sandboxIDs[c.PodSandboxId] || known[c.Labels[labelPodUID]] {
			continue
		}
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			_ = e.runtime.StopContainer(ctx, c.Id, orphanGrace)
		}
		if err := e.runtime.RemoveContainer(ctx, c.Id); err == nil {
			e.stats.garbageCollected.Add(1)
		}
	}
	e.removeDirs(filepath.Join(e.cfg.RootDir, "pods"), known, func(name string) string { return name })
	e.removeDirs(filepath.Join(e.cfg.RootDir, "logs", "pods"), known, func(name string) string {
		return name[strings.LastIndexByte(name, '_')+1:]
	})
}

// removeDirs removes the entries of dir whose pod UID (uidOf the entry's name) is not known.
func (e *Edged) removeDirs(dir string, known map[string]bool, uidOf func(string) string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, en := range entries {
		if !known[uidOf(en.Name())] {
			_ = os.RemoveAll(filepath.Join(dir, en.Name()))
		}
	}
}
