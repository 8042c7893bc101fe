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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels and annotations Edged puts on sandboxes and containers. The pod's UID, name and
// namespace use kubelet's keys, so crictl and other tools show them; LabelManaged marks what
// Edged owns and may garbage-collect.
const (
	LabelManaged       = "edgetwin.dev/managed-by"
	managedValue       = "edged"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelContainerName = "io.kubernetes.container.name"
	annotationHash     = "io.kubernetes.container.hash"
	annotationGrace    = "io.kubernetes.pod.terminationGracePeriod"
	annotationInit     = "edgetwin.dev/init-container"
)

// errContainerConfig marks a container whose configuration cannot be built (a missing
// ConfigMap key in its env, a volume that is not ready): CreateContainerConfigError.
var errContainerConfig = errors.New("container configuration")

func podLabels(pod *v1.Pod) map[string]string {
	l := map[string]string{LabelManaged: managedValue, labelPodUID: string(pod.UID), labelPodName: pod.Name,
		labelPodNamespace: pod.Namespace}
	for k, v := range pod.Labels {
		if _, ours := l[k]; !ours {
			l[k] = v
		}
	}
	return l
}

func gracePeriod(pod *v1.Pod) int64 {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return v1.DefaultTerminationGracePeriodSeconds
}

// sandboxConfig is the CRI sandbox of a pod.
func (e *Edged) sandboxConfig(pod *v1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	annotations := maps.Clone(pod.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[annotationGrace] = strconv.FormatInt(gracePeriod(pod), 10)
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	network := runtimeapi.NamespaceMode_POD
	if pod.Spec.HostNetwork {
		network, hostname = runtimeapi.NamespaceMode_NODE, ""
	}
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	var ports []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 || pod.Spec.HostNetwork {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case v1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case v1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			ports = append(ports, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: e.logDir(pod),
		PortMappings: ports,
		Labels:       podLabels(pod),
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: network, Pid: runtimeapi.NamespaceMode_CONTAINER,
					Ipc: runtimeapi.NamespaceMode_POD},
			},
		},
	}
}

// logDir is where the runtime writes a pod's container logs, kubelet's layout:
// <root>/logs/pods/<namespace>_<name>_<uid>/<container>/<restartCount>.log.
func (e *Edged) logDir(pod *v1.Pod) string {
	return filepath.Join(e.cfg.RootDir, "logs", "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// ContainerLogPath is the log file of a pod's container at a restart count.
func (e *Edged) ContainerLogPath(pod *v1.Pod, container string, restartCount int) string {
	return filepath.Join(e.logDir(pod), container, strconv.Itoa(restartCount)+".log")
}

// containerHash is a digest of the container's spec: a container whose spec changed is
// replaced.
func containerHash(c *v1.Container) string {
	raw, _ := json.Marshal(c)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// containerConfig builds a container's CRI config: command and args with $(VAR) expanded, the
// environment resolved, the volumes mounted.
func (e *Edged) containerConfig(pod *v1.Pod, c *v1.Container, attempt uint32, imageRef, podIP string,
	volumes map[string]string, volumeErr error, init bool) (*runtimeapi.ContainerConfig, error) {
	env, err := e.resolveEnv(pod, c, podIP)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errContainerConfig, err)
	}
	lookup := func(name string) (string, bool) {
		for _, kv := range slices.Backward(env) {
			if kv.Key == name {
				return string(kv.Value), true
			}
		}
		return "", false
	}
	expandAll := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expand(s, lookup)
		}
		return out
	}
	mounts, err := mountsFor(c, volumes, volumeErr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errContainerConfig, err)
	}
	labels := map[string]string{LabelManaged: managedValue, labelPodUID: string(pod.UID), labelPodName: pod.Name,
		labelPodNamespace: pod.Namespace, labelContainerName: c.Name}
	annotations := map[string]string{annotationHash: containerHash(c), annotationGrace: strconv.FormatInt(gracePeriod(pod), 10)}
	if init {
		annotations[annotationInit] = "true"
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER,
			Ipc: runtimeapi.NamespaceMode_POD},
	}
	if pod.Spec.HostNetwork {
		sc.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	}
	applySecurityContext(sc, pod.Spec.SecurityContext, c.SecurityContext)
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command),
		Args:        expandAll(c.Args),
		WorkingDir:  c.WorkingDir,
		Envs:        env,
		Mounts:      mounts,
		Labels:      labels,
		Annotations: annotations,
		LogPath:     filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux:       &runtimeapi.LinuxContainerConfig{SecurityContext: sc, Resources: &runtimeapi.LinuxContainerResources{}},
	}, nil
}

func applySecurityContext(sc *runtimeapi.LinuxContainerSecurityContext, psc *v1.PodSecurityContext, csc *v1.SecurityContext) {
	if psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	if csc == nil {
		return
	}
	if csc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
	}
	if csc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
	}
	if csc.Privileged != nil {
		sc.Privileged = *csc.Privileged
	}
	if csc.ReadOnlyRootFilesystem != nil {
		sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		sc.NoNewPrivs = !*csc.AllowPrivilegeEscalation
	}
	if csc.Capabilities != nil {
		caps := &runtimeapi.Capability{}
		for _, c := range csc.Capabilities.Add {
			caps.AddCapabilities = append(caps.AddCapabilities, string(c))
		}
		for _, c := range csc.Capabilities.Drop {
			caps.DropCapabilities = append(caps.DropCapabilities, string(c))
		}
		sc.Capabilities = caps
	}
}

// mountsFor mounts the container's volumes. configMap, secret, downwardAPI and projected
// volumes are always read-only, as in kubelet.
func mountsFor(c *v1.Container, volumes map[string]string, volumeErr error) ([]*runtimeapi.Mount, error) {
	mounts := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		host, ok := volumes[vm.Name]
		if !ok {
			if volumeErr != nil && strings.Contains(volumeErr.Error(), fmt.Sprintf("volume %q", vm.Name)) {
				return nil, volumeErr
			}
			return nil, fmt.Errorf("volume %q is not defined in the pod", vm.Name)
		}
		if vm.SubPath != "" {
			clean := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, fmt.Errorf("subPath %q leaves the volume", vm.SubPath)
			}
			host = filepath.Join(host, clean)
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE})
	}
	return mounts, nil
}

// resolveEnv computes the container's environment: envFrom first, then env in order, each value
// with $(VAR) references to the variables before it expanded.
func (e *Edged) resolveEnv(pod *v1.Pod, c *v1.Container, podIP string) ([]*runtimeapi.KeyValue, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, ok, err := e.cfg.Source.ConfigMap(pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				return nil, err
			}
			if !ok {
				if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			sec, ok, err := e.cfg.Source.Secret(pod.Namespace, from.SecretRef.Name)
			if err != nil {
				return nil, err
			}
			if !ok {
				if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			set(from.Prefix+k, data[k])
		}
	}
	for _, ev := range c.Env {
		if ev.ValueFrom == nil {
			set(ev.Name, expand(ev.Value, func(n string) (string, bool) { v, ok := vars[n]; return v, ok }))
			continue
		}
		v, ok, err := e.envValueFrom(pod, ev.ValueFrom, podIP)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", ev.Name, err)
		}
		if ok {
			set(ev.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, 0, len(order))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vars[k])})
	}
	return out, nil
}

func (e *Edged) envValueFrom(pod *v1.Pod, from *v1.EnvVarSource, podIP string) (string, bool, error) {
	optional := func(b *bool) bool { return b != nil && *b }
	switch {
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath, podIP, e.hostIP)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, ok, err := e.cfg.Source.ConfigMap(pod.Namespace, ref.Name)
		if err != nil {
			return "", false, err
		}
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", false, fmt.Errorf("configmap %q has no key %q", ref.Name, ref.Key)
		}
		return v, ok, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		sec, ok, err := e.cfg.Source.Secret(pod.Namespace, ref.Name)
		if err != nil {
			return "", false, err
		}
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q not found", ref.Name)
		}
		v, ok := sec.Data[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", false, fmt.Errorf("secret %q has no key %q", ref.Name, ref.Key)
		}
		return string(v), ok, nil
	}
	return "", false, errors.New("only fieldRef, configMapKeyRef and secretKeyRef are supported")
}

// fieldValue is the downward API: the value of a pod field.
func fieldValue(pod *v1.Pod, fieldPath, podIP, hostIP string) (string, error) {
	if k, ok := subscript(fieldPath, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(fieldPath, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	return "", fmt.Errorf("field %q is not supported", fieldPath)
}

// subscript parses prefix['key'].
func subscript(fieldPath, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fieldPath, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// formatMap writes labels or annotations as the downward API does: key="value" lines, sorted.
func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lines = append(lines, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(lines, "\n")
}
