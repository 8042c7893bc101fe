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

package packaging

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/edgetwin/edgetwin/test/harness"
)

const testVersion = "v0.0.0-packaging-test"

// TestCloudcoreImage builds the cloudcore image as 'make images' does (no Docker), reads the
// tarball back both ways a runtime would (OCI layout, Docker manifest.json), checks the image's
// config, takes the binary out of its layers and runs it against the API server until /readyz
// answers. Where containerd is installed, the image is also imported into a containerd started
// for the test and run there.
func TestCloudcoreImage(t *testing.T) {
	out := t.TempDir()
	run(t, nil, "hack/build-images.sh", out, "edgetwin-test/", testVersion, "cloudcore")
	archive := filepath.Join(out, "cloudcore.tar")
	bin, _ := readImage(t, archive, "cloudcore")

	// The binary from the image runs: cloudcore against the suite's API server, ready.
	probe := harness.LoopbackAddr(t)
	harness.StartProgram(t, "cloudcore from the image", bin, "--kubeconfig", cl.Kubeconfig, "--namespace", harness.SystemNamespace,
		"--hub-bind-address", harness.LoopbackAddr(t), "--advertise-address", "127.0.0.1", "--metrics-bind-address", "0",
		"--health-probe-bind-address", probe)
	harness.WaitFor(t, "cloudcore from the image to be ready", func() bool { return harness.HTTPOK("http://" + probe + "/readyz") })

	t.Run("in containerd", func(t *testing.T) { runInContainerd(t, archive) })
}

// TestEdgecoreImage builds the edgecore image as 'make images' does and reads it back: its
// static binary runs, and /var/lib/edgecore belongs to the image's user.
func TestEdgecoreImage(t *testing.T) {
	out := t.TempDir()
	run(t, nil, "hack/build-images.sh", out, "edgetwin-test/", testVersion, "edgecore")
	bin, files := readImage(t, filepath.Join(out, "edgecore.tar"), "edgecore")
	if hdr, ok := files["var/lib/edgecore"]; !ok || hdr.Uid != 65532 || hdr.Typeflag != tar.TypeDir {
		t.Errorf("the image's /var/lib/edgecore: %+v, want a directory of user 65532", hdr)
	}
	got := strings.TrimSpace(string(run(t, nil, bin, "--version")))
	if want := "edgecore " + testVersion + " linux/" + runtime.GOARCH; got != want {
		t.Errorf("edgecore --version from the image = %q, want %q", got, want)
	}
}

// readImage reads an image tarball of hack/imagebuild both ways a runtime would (OCI layout,
// Docker manifest.json), checks its config and layers, and returns the path of its binary,
// taken out of the layers, and the headers of every file in it.
func readImage(t *testing.T, archive, name string) (string, map[string]*tar.Header) {
	t.Helper()
	dir := t.TempDir()
	untar(t, archive, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("the tarball is not an OCI layout: %v", err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil || len(manifest.Manifests) != 1 {
		t.Fatalf("the OCI index: %v, %d manifests", err, len(manifest.Manifests))
	}
	if got := manifest.Manifests[0].Annotations["io.containerd.image.name"]; !strings.HasSuffix(got, "/edgetwin-test/"+name+":"+testVersion) {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	img, err := idx.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// The Docker manifest.json names the same image.
	dockerImg, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatalf("reading the tarball as 'docker load' does: %v", err)
	}
	d1, _ := img.ConfigName()
	d2, _ := dockerImg.ConfigName()
	if d1 != d2 {
		t.Errorf("the OCI layout's config %s and manifest.json's %s differ", d1, d2)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/"+name {
		t.Errorf("entrypoint %q, want /%s", got, name)
	}
	if cfg.Config.User != "65532:65532" || cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("user %q, platform %s/%s: want 65532:65532 on linux/%s", cfg.Config.User, cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if cfg.Config.Labels["org.opencontainers.image.version"] != testVersion {
		t.Errorf("labels %v", cfg.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %v, %d; want 2 (base files, binary)", err, len(layers))
	}

	// Take the files out of the flattened image, as a runtime would lay them.
	files := map[string]*tar.Header{}
	bin := filepath.Join(t.TempDir(), name)
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(hdr.Name, "/")] = hdr
		if hdr.Name == name {
			f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil { //nolint:gosec // our own image
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for file, mode := range map[string]int64{name: 0o755, "etc/passwd": 0o644, "tmp": 0o1777, "home/nonroot": 0o700} {
		if hdr, ok := files[file]; !ok || hdr.Mode != mode {
			t.Errorf("the image's %s: present %v, want mode %o", file, ok, mode)
		}
	}
	if interp := interpreter(t, bin); interp != "" {
		t.Errorf("%s in the image is dynamically linked (%s): it needs a static build", name, interp)
	}
	return bin, files
}

// runInContainerd imports the image into a containerd of its own and runs cloudcore in it
// against the suite's API server, until /readyz answers. It needs containerd, ctr and runc, and
// root; without them it skips, saying what is missing.
func runInContainerd(t *testing.T, archive string) {
	var missing []string
	for _, bin := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		t.Skipf("containerd is not installed here (missing %s): the image was read back and its binary run, but not run in a container runtime",
			strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	dir, err := os.MkdirTemp("", "edgetwin-containerd-") // short: the socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock), 0o600); err != nil {
		t.Fatal(err)
	}
	harness.StartProgram(t, "containerd", "containerd", "--config", config)
	ctr := func(args ...string) ([]byte, error) {
		return exec.Command("ctr", append([]string{"--address", sock, "--namespace", "edgetwin-test"}, args...)...).CombinedOutput()
	}
	harness.WaitFor(t, "containerd to answer", func() bool { _, err := ctr("version"); return err == nil })
	out, err := ctr("images", "import", "--all-platforms", archive)
	if err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	list, _ := ctr("images", "list", "-q")
	ref := strings.TrimSpace(string(list))
	if !strings.HasSuffix(ref, "/edgetwin-test/cloudcore:"+testVersion) {
		t.Fatalf("containerd holds %q after the import", list)
	}
	kubeDir := t.TempDir()
	raw, err := os.ReadFile(cl.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kubeDir, "kubeconfig"), raw, 0o644); err != nil { //nolint:gosec // the container's user reads it
		t.Fatal(err)
	}
	probe := harness.LoopbackAddr(t)
	harness.StartProgram(t, "ctr run", "ctr", "--address", sock, "--namespace", "edgetwin-test", "run", "--rm", "--net-host",
		"--mount", "type=bind,src="+kubeDir+",dst=/kube,options=rbind:ro", ref, "cloudcore-test",
		"/cloudcore", "--kubeconfig", "/kube/kubeconfig", "--namespace", harness.SystemNamespace,
		"--hub-bind-address", "0", "--metrics-bind-address", "0", "--health-probe-bind-address", probe)
	deadline := time.Now().Add(time.Minute)
	for !harness.HTTPOK("http://" + probe + "/readyz") {
		if time.Now().After(deadline) {
			t.Fatal("cloudcore in containerd did not become ready within a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(func() { _, _ = ctr("tasks", "kill", "--signal", "SIGKILL", "cloudcore-test") })
}

// untar unpacks a tar file into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(filepath.Separator)) {
			t.Fatalf("the tarball has an entry outside its root: %s", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			var out *os.File
			if out, err = os.Create(path); err == nil {
				_, err = io.Copy(out, tr) //nolint:gosec // our own tarball
				err = errors.Join(err, out.Close())
			}
		default:
			t.Fatalf("unexpected entry %s of type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// interpreter returns the ELF interpreter a binary asks for; "" for a static binary.
func interpreter(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			data, _ := io.ReadAll(p.Open())
			return strings.TrimRight(string(data), "\x00")
		}
	}
	return ""
}
