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
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// defaultFileMode is Kubernetes' default mode of configMap, secret, downwardAPI and projected
// files (0644).
const defaultFileMode = 0o644

// dataDir is the symlink inside a written volume that points at the current content; the
// visible names are symlinks through it, so a container sees an update all at once (kubelet's
// AtomicWriter layout).
const dataDir = "..data"

// errVolume marks a volume that could not be set up (a missing ConfigMap, an unsupported type).
var errVolume = errors.New("volume not ready")

type fileContent struct {
	data []byte
	mode os.FileMode
}

// podDir is where a pod's volumes live on the node.
func (e *Edged) podDir(uid string) string { return filepath.Join(e.cfg.RootDir, "pods", uid) }

// setupVolumes writes every volume of the pod and returns their host paths by name; a volume
// that cannot be set up is left out and its error returned (joined), so the containers that do
// not mount it can still run.
func (e *Edged) setupVolumes(pod *v1.Pod, podIP string) (map[string]string, error) {
	paths := map[string]string{}
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		p, err := e.setupVolume(pod, vol, podIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: volume %q: %w", errVolume, vol.Name, err))
			continue
		}
		paths[vol.Name] = p
	}
	return paths, errors.Join(errs...)
}

func (e *Edged) setupVolume(pod *v1.Pod, vol *v1.Volume, podIP string) (string, error) {
	dir := filepath.Join(e.podDir(string(pod.UID)), "volumes", vol.Name)
	switch {
	case vol.EmptyDir != nil:
		// World-writable, as kubelet makes it, so a container of any user can use it.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o777)
	case vol.HostPath != nil:
		return vol.HostPath.Path, setupHostPath(vol.HostPath)
	}
	payload, err := e.volumePayload(pod, vol, podIP)
	if err != nil {
		return "", err
	}
	return dir, writeAtomic(dir, payload)
}

func setupHostPath(hp *v1.HostPathVolumeSource) error {
	t := v1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	st, err := os.Stat(hp.Path)
	switch t {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if err != nil {
			return os.MkdirAll(hp.Path, 0o755)
		}
	case v1.HostPathFileOrCreate:
		if err != nil {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	case v1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return fmt.Errorf("hostPath %s is not a directory", hp.Path)
		}
	case v1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("hostPath %s is not a file", hp.Path)
		}
	default:
		if err != nil {
			return fmt.Errorf("hostPath %s: %w", hp.Path, err)
		}
	}
	return nil
}

// volumePayload computes the files of a configMap, secret, downwardAPI or projected volume.
func (e *Edged) volumePayload(pod *v1.Pod, vol *v1.Volume, podIP string) (map[string]fileContent, error) {
	payload := map[string]fileContent{}
	switch {
	case vol.ConfigMap != nil:
		return payload, e.addConfigMap(payload, pod.Namespace, vol.ConfigMap.Name, vol.ConfigMap.Items,
			vol.ConfigMap.Optional, fileMode(vol.ConfigMap.DefaultMode))
	case vol.Secret != nil:
		return payload, e.addSecret(payload, pod.Namespace, vol.Secret.SecretName, vol.Secret.Items,
			vol.Secret.Optional, fileMode(vol.Secret.DefaultMode))
	case vol.DownwardAPI != nil:
		return payload, e.addDownward(payload, pod, vol.DownwardAPI.Items, podIP, fileMode(vol.DownwardAPI.DefaultMode))
	case vol.Projected != nil:
		mode := fileMode(vol.Projected.DefaultMode)
		for _, src := range vol.Projected.Sources {
			var err error
			switch {
			case src.ConfigMap != nil:
				err = e.addConfigMap(payload, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode)
			case src.Secret != nil:
				err = e.addSecret(payload, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode)
			case src.DownwardAPI != nil:
				err = e.addDownward(payload, pod, src.DownwardAPI.Items, podIP, mode)
			case src.ServiceAccountToken != nil:
				err = e.addToken(payload, pod, src.ServiceAccountToken.Path, mode)
			default:
				err = errors.New("a projected source Edged does not support")
			}
			if err != nil {
				return nil, err
			}
		}
		return payload, nil
	}
	return nil, errors.New("a volume type Edged does not support (it supports emptyDir, hostPath, configMap, secret, downwardAPI, projected)")
}

func fileMode(m *int32) os.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return os.FileMode(*m) & os.ModePerm
}

func (e *Edged) addConfigMap(payload map[string]fileContent, ns, name string, items []v1.KeyToPath, optional *bool,
	mode os.FileMode) error {
	cm, ok, err := e.cfg.Source.ConfigMap(ns, name)
	if err != nil {
		return err
	}
	if !ok {
		if optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("configmap %q not found", name)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	return addKeys(payload, "configmap", name, data, items, optional, mode)
}

func (e *Edged) addSecret(payload map[string]fileContent, ns, name string, items []v1.KeyToPath, optional *bool, mode os.FileMode) error {
	sec, ok, err := e.cfg.Source.Secret(ns, name)
	if err != nil {
		return err
	}
	if !ok {
		if optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("secret %q not found", name)
	}
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	for k, v := range sec.StringData {
		data[k] = []byte(v)
	}
	return addKeys(payload, "secret", name, data, items, optional, mode)
}

func addKeys(payload map[string]fileContent, kind, name string, data map[string][]byte, items []v1.KeyToPath,
	optional *bool, mode os.FileMode) error {
	if len(items) == 0 {
		for k, v := range data {
			if err := put(payload, k, v, mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = fileMode(it.Mode)
		}
		if err := put(payload, it.Path, v, m); err != nil {
			return err
		}
	}
	return nil
}

func (e *Edged) addDownward(payload map[string]fileContent, pod *v1.Pod, items []v1.DownwardAPIVolumeFile,
	podIP string, mode os.FileMode) error {
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %q: only fieldRef is supported", it.Path)
		}
		v, err := fieldValue(pod, it.FieldRef.FieldPath, podIP, e.hostIP)
		if err != nil {
			return err
		}
		m := mode
		if it.Mode != nil {
			m = fileMode(it.Mode)
		}
		if err := put(payload, it.Path, []byte(v), m); err != nil {
			return err
		}
	}
	return nil
}

func (e *Edged) addToken(payload map[string]fileContent, pod *v1.Pod, p string, mode os.FileMode) error {
	tok, ok, err := e.cfg.Source.ServiceAccountToken(pod.Namespace, pod.Name)
	if err != nil {
		return err
	}
	if !ok || (tok.PodUID != "" && tok.PodUID != string(pod.UID)) {
		return errors.New("the service account token has not arrived from the cloud yet")
	}
	return put(payload, p, []byte(tok.Token), mode)
}

// put adds a file after checking that its path stays inside the volume.
func put(payload map[string]fileContent, p string, data []byte, mode os.FileMode) error {
	clean := path.Clean(p)
	if p == "" || path.IsAbs(p) || clean == "." || strings.HasPrefix(clean, "..") {
		return fmt.Errorf("file path %q is not a relative path inside the volume", p)
	}
	payload[clean] = fileContent{data: data, mode: mode}
	return nil
}

// writeAtomic makes dir hold exactly payload: the files are written to a new directory, the
// ..data symlink is swapped to it in one rename, and the top-level names are symlinks through
// ..data. Nothing is written when the content is unchanged.
func writeAtomic(dir string, payload map[string]fileContent) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if current, err := os.Readlink(filepath.Join(dir, dataDir)); err == nil && sameContent(filepath.Join(dir, current), payload) {
		return nil
	}
	old, _ := os.Readlink(filepath.Join(dir, dataDir))
	ts, err := os.MkdirTemp(dir, "..data_")
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	for p, f := range payload {
		full := filepath.Join(ts, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	top := map[string]bool{}
	for p := range payload {
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDir, name), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), "..") && !top[en.Name()] {
			_ = os.RemoveAll(filepath.Join(dir, en.Name()))
		}
	}
	if old != "" && old != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// sameContent says whether dir holds exactly payload.
func sameContent(dir string, payload map[string]fileContent) bool {
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		found = append(found, filepath.ToSlash(rel))
		return nil
	})
	if err != nil || len(found) != len(payload) {
		return false
	}
	for _, p := range slices.Sorted(maps.Keys(payload)) {
		f := payload[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		st, err := os.Stat(full)
		if err != nil || st.Mode().Perm() != f.mode {
			return false
		}
		raw, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(raw, f.data) {
			return false
		}
	}
	return true
}
