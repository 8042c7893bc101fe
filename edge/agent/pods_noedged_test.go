//go:build noedged

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
	"errors"
	"testing"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
)

func TestADeviceOnlyEdgecoreRefusesPods(t *testing.T) {
	cfg := config.New("https://cloud.example:10350", "edge-1")
	if rt, err := newWorkloads(cfg, t.TempDir(), nil, func() {}, logr.Discard()); rt != nil || err != nil {
		t.Fatalf("newWorkloads without a runtime = %v, %v; want nothing to run and no error", rt, err)
	}
	for _, e := range []*config.Edged{{RuntimeEndpoint: "unix:///run/containerd/containerd.sock"}, {Containerd: &config.Containerd{}}} {
		cfg.Edged = e
		if _, err := newWorkloads(cfg, t.TempDir(), nil, func() {}, logr.Discard()); !errors.Is(err, ErrNoEdged) {
			t.Errorf("newWorkloads with %+v = %v, want ErrNoEdged", e, err)
		}
	}
}
