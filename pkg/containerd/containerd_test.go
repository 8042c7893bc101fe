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

package containerd_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/edgetwin/edgetwin/pkg/containerd"
	"github.com/edgetwin/edgetwin/pkg/containerd/containerdtest"
)

func TestStartRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  containerd.Config
		want string
	}{
		{"a config without a directory is refused", containerd.Config{}, "Dir is required"},
		{"a pod subnet that is not a CIDR is refused", containerd.Config{Dir: t.TempDir(), PodSubnet: "10.0.0.0"}, "pod subnet"},
		{"a bridge name Linux cannot hold is refused", containerd.Config{Dir: t.TempDir(), Bridge: "a-very-long-bridge-name"}, "longer than 15"},
		{"an unknown snapshotter is refused", containerd.Config{Dir: t.TempDir(), Snapshotter: "zfs"}, "snapshotter"},
		{"a missing containerd names the packages to install",
			containerd.Config{Dir: t.TempDir(), Binary: "/nonexistent/containerd"}, "apt-get install -y containerd runc containernetworking-plugins"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := containerd.Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	_, err := containerd.Start(context.Background(), containerd.Config{Dir: t.TempDir(), Binary: "/nonexistent/containerd"})
	if !errors.Is(err, containerd.ErrNotInstalled) {
		t.Errorf("a missing binary: %v, want ErrNotInstalled", err)
	}
}

// A containerd that dies at start is reported with the end of its log.
func TestStartQuotesTheLogWhenContainerdFails(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "containerd")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'failed to load the config: it is broken' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := containerd.Start(context.Background(), containerd.Config{Dir: filepath.Join(dir, "d"), Binary: script})
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "it is broken") {
		t.Fatalf("Start: %v, want the exit and the log quoted", err)
	}
}

func TestContainerdServesCRIWithTheTestImages(t *testing.T) {
	env := containerdtest.Start(t)
	ctx := context.Background()
	v, err := env.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "containerd" {
		t.Errorf("runtime %q, want containerd", v.RuntimeName)
	}
	images := runtimeapi.NewImageServiceClient(dial(t, env.Endpoint()))
	for _, img := range []string{containerdtest.PauseImage, containerdtest.WorkloadImage} {
		st, err := images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: img}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Image == nil {
			t.Errorf("%s is not in the CRI's image store after the import", img)
		}
	}
	status, err := runtimeapi.NewRuntimeServiceClient(dial(t, env.Endpoint())).Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Config struct {
			SandboxImage        string `json:"sandboxImage"`
			RestrictOOMScoreAdj bool   `json:"restrictOOMScoreAdj"`
			Containerd          struct {
				Snapshotter string `json:"snapshotter"`
			} `json:"containerd"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(status.Info["config"]), &cfg.Config); err != nil {
		t.Fatalf("the CRI status has no readable config: %v", err)
	}
	if cfg.Config.SandboxImage != containerd.DefaultPauseImage || !cfg.Config.RestrictOOMScoreAdj ||
		cfg.Config.Containerd.Snapshotter != env.Snapshotter() {
		t.Errorf("the CRI runs with %+v, want the pause image, restrict_oom_score_adj and snapshotter %s", cfg.Config, env.Snapshotter())
	}
	for _, c := range status.Status.Conditions {
		if !c.Status {
			t.Errorf("runtime condition %s is false: %s %s", c.Type, c.Reason, c.Message)
		}
	}
}

// The CRI pulls from a plain-http registry on loopback once it is allowed.
func TestPullFromALoopbackRegistry(t *testing.T) {
	env := containerdtest.Start(t)
	ref, digest := containerdtest.LoopbackRegistry(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	images := runtimeapi.NewImageServiceClient(dial(t, env.Endpoint()))
	pulled, err := images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	st, err := images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}})
	if err != nil || st.Image == nil {
		t.Fatalf("the pulled image is not there: %v", err)
	}
	found := false
	for _, d := range st.Image.RepoDigests {
		found = found || strings.HasSuffix(d, digest)
	}
	if !found {
		t.Errorf("repo digests %v, want one ending in %s", st.Image.RepoDigests, digest)
	}
}

func dial(t *testing.T, endpoint string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
