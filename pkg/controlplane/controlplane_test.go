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

package controlplane

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssetsDir(t *testing.T) {
	tests := []struct {
		name          string
		assets, cache string
		xdg           string
		want          string
	}{
		{"KUBEBUILDER_ASSETS wins", "/opt/assets", "/c", "/x", "/opt/assets"},
		{"then the project cache", "", "/c", "/x", filepath.Join("/c", "k8s", KubernetesVersion)},
		{"then the user's cache directory", "", "", "/x", filepath.Join("/x", "edgetwin", "k8s", KubernetesVersion)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBEBUILDER_ASSETS", tt.assets)
			t.Setenv("EDGETWIN_CACHE", tt.cache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			if got := AssetsDir(); got != tt.want {
				t.Fatalf("AssetsDir() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStartWithoutBinariesSaysHowToBuildThem: a missing control plane is a clear error naming the
// make target, never a hang or a download attempt.
func TestStartWithoutBinariesSaysHowToBuildThem(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	cp, err := Start()
	if err == nil {
		_ = cp.Stop()
		t.Fatal("Start succeeded without binaries")
	}
	if !errors.Is(err, ErrAssetsMissing) || !strings.Contains(err.Error(), "make control-plane") {
		t.Fatalf("Start() error = %v, want ErrAssetsMissing naming 'make control-plane'", err)
	}
}
