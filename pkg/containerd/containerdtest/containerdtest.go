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

// Package containerdtest starts the project's private containerd for a test, with the test
// images (hack/build-test-images.sh) imported, on a pod network of its own, and purges it when
// the test ends. A test that needs containerd fails, never skips, when it is not installed: the
// message says which Debian packages to install (make test installs them).
package containerdtest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/edgetwin/edgetwin/pkg/containerd"
)

// The test images.
const (
	PauseImage    = containerd.DefaultPauseImage
	WorkloadImage = "edgetwin.dev/workload:1"
)

// Env is a running containerd for one test.
type Env struct {
	*containerd.Containerd
	// Subnet is its pod subnet.
	Subnet string
}

var (
	imagesOnce sync.Once
	imagesDir  string
	imagesErr  error
)

// Images builds the test images once per test process and returns the directory holding
// pause.tar and workload.tar.
func Images(t testing.TB) string {
	t.Helper()
	imagesOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			imagesErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "hack", "build-test-images.sh"))
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			imagesErr = fmt.Errorf("hack/build-test-images.sh: %w: %s", err, stderr(err))
			return
		}
		imagesDir = strings.TrimSpace(string(out))
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return imagesDir
}

// Start starts a containerd in a fresh directory with the test images imported. The network
// (bridge etdt<N>, subnet 10.234.<N>.0/24) is one no other test process holds, so test
// packages running at once never share a bridge. Stop, kill shims and remove state through the
// returned Env; the whole of it is purged at the end of the test.
func Start(t testing.TB) *Env {
	t.Helper()
	n := lockNetwork(t)
	dir, err := os.MkdirTemp("", "etd-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := containerd.Config{Dir: dir, Bridge: fmt.Sprintf("etdt%d", n), PodSubnet: fmt.Sprintf("10.234.%d.0/24", n)}
	env := &Env{Subnet: cfg.PodSubnet}
	env.Containerd = Restart(t, cfg)
	t.Cleanup(func() {
		if err := env.Purge(); err != nil {
			t.Errorf("purging the test containerd: %v", err)
		}
		_ = exec.Command("ip", "link", "delete", cfg.Bridge).Run()
	})
	return env
}

// Restart starts a containerd with cfg (again, after a Stop) and imports the test images.
func Restart(t testing.TB, cfg containerd.Config) *containerd.Containerd {
	t.Helper()
	images := Images(t)
	c, err := containerd.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"pause.tar", "workload.tar"} {
		if err := c.ImportImage(context.Background(), filepath.Join(images, img)); err != nil {
			_ = c.Purge()
			t.Fatal(err)
		}
	}
	return c
}

// lockNetwork takes an exclusive lock on one of 200 network numbers for the rest of the test
// process (the lock goes with the process).
func lockNetwork(t testing.TB) int {
	t.Helper()
	for n := 1; n <= 200; n++ {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("edgetwin-test-net-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		t.Cleanup(func() { _ = f.Close() })
		return n
	}
	t.Fatal("every test network number is taken")
	return 0
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func stderr(err error) string {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// LoopbackRegistry starts go-containerregistry's registry in process on a loopback port (plain
// http), pushes the workload test image to it as <host>/edgetwin/workload:pulled, and allows
// env's containerd to pull from it. It returns the image's reference and digest.
func LoopbackRegistry(t testing.TB, env *Env) (ref, digest string) {
	t.Helper()
	reg := httptest.NewServer(registry.New())
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := tarball.ImageFromPath(filepath.Join(Images(t), "workload.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(host + "/edgetwin/workload:pulled")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	if err := env.AllowInsecureRegistry(host); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.String(), d.String()
}
