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

package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/pkg/containerd"
)

func TestEachDevEnvironmentGetsAPodNetworkOfItsOwn(t *testing.T) {
	locks := t.TempDir()
	none := map[string][]netip.Prefix{}

	first, release1, err := lockNetwork(locks, 0, none)
	if err != nil || first != 1 {
		t.Fatalf("the first lock = %d, %v; want network 1", first, err)
	}
	second, release2, err := lockNetwork(locks, 0, none)
	if err != nil || second != 2 {
		t.Fatalf("a second environment got %d, %v; want network 2 while 1 is held", second, err)
	}
	release2()

	// A resumed environment gets its network back when it is free, whatever the lowest free one is.
	again, release3, err := lockNetwork(locks, 7, none)
	if err != nil || again != 7 {
		t.Fatalf("with network 7 preferred, got %d, %v", again, err)
	}
	release3()
	// ...and another one when someone holds it.
	other, release4, err := lockNetwork(locks, 1, none)
	if err != nil || other == 1 {
		t.Fatalf("with the held network 1 preferred, got %d, %v; want another", other, err)
	}
	release4()

	// Once released, a network is free again.
	release1()
	n, release5, err := lockNetwork(locks, 0, none)
	if err != nil || n != 1 {
		t.Fatalf("after the release, got %d, %v; want network 1 again", n, err)
	}
	release5()
}

func TestAPodNetworkNeverOverlapsTheMachinesAddresses(t *testing.T) {
	addrs := map[string][]netip.Prefix{
		"eth0":   {netip.MustParsePrefix("10.235.1.17/24")},
		"wg0":    {netip.MustParsePrefix("10.235.2.0/23")}, // covers network 2 and 3
		"etdev4": {netip.MustParsePrefix("10.235.4.1/24")}, // network 4's own bridge, left from a run
	}
	n, release, err := lockNetwork(t.TempDir(), 1, addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if n != 4 {
		t.Fatalf("got network %d; want 4, the first whose subnet only its own bridge holds", n)
	}
}

func TestThePodNetworkSettingsAreWhatJoinWrites(t *testing.T) {
	p := &podRuntime{dataDir: "/dev-state/edges/edge-1", net: 12, images: []string{"/cache/pause.tar", "/cache/workload.tar"}}
	want := []string{"--containerd", "--bridge", "etdev12", "--pod-subnet", "10.235.12.0/24",
		"--image", "/cache/pause.tar", "--image", "/cache/workload.tar"}
	if got := p.joinArgs(); !slices.Equal(got, want) {
		t.Fatalf("joinArgs = %q, want %q", got, want)
	}
	cfg := p.containerdConfig()
	if cfg.Dir != "/dev-state/edges/edge-1/containerd" || cfg.Bridge != "etdev12" || cfg.PodSubnet != "10.235.12.0/24" {
		t.Fatalf("the containerd the stop cleans up is %+v; want the one edgecore starts for these flags", cfg)
	}
	e := p.edged()
	if e.Containerd == nil || e.Containerd.Dir != "" || e.Containerd.Bridge != "etdev12" || e.Containerd.PodSubnet != "10.235.12.0/24" ||
		!slices.Equal(e.Containerd.Images, p.images) {
		t.Fatalf("edged() = %+v, want the section those flags write", e.Containerd)
	}
	if (*podRuntime)(nil).edged() != nil {
		t.Fatal("a node without pods wants an edged section")
	}
}

func TestANodeJoinsAgainWhenItsPodRuntimeChanged(t *testing.T) {
	pods := &podRuntime{net: 3, images: []string{"/cache/pause.tar", "/cache/workload.tar"}}
	stored := func(t *testing.T, edged *config.Edged) string {
		dir := t.TempDir()
		cfg := config.New("https://127.0.0.1:10350", "edge-1")
		cfg.Edged = edged
		if err := cfg.Save(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name    string
		dataDir func(t *testing.T) string
		pods    *podRuntime
		want    string
	}{
		{"a node that never joined joins", func(t *testing.T) string { return t.TempDir() }, nil, notJoined},
		{"a device-only node stays one", func(t *testing.T) string { return stored(t, nil) }, nil, ""},
		{"a node with the same containerd resumes", func(t *testing.T) string { return stored(t, pods.edged()) }, pods, ""},
		{"a device-only node joins again once containerd can run",
			func(t *testing.T) string { return stored(t, nil) }, pods, "ran pods differently on an earlier run (no pods)"},
		{"a node with pods joins again when containerd cannot run any more",
			func(t *testing.T) string { return stored(t, pods.edged()) }, nil, "(own containerd, bridge etdev3, pod IPs from 10.235.3.0/24)"},
		{"a node on another network joins again",
			func(t *testing.T) string { return stored(t, (&podRuntime{net: 9, images: pods.images}).edged()) }, pods, "bridge etdev9"},
		{"a node with an unreadable config joins again", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte("server: [\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}, nil, "has an unreadable config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := joinNeeded(tt.dataDir(t), tt.pods)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("joinNeeded = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWhyContainerdCannotRunIsSaidInOneLine(t *testing.T) {
	binary := filepath.Join(t.TempDir(), "containerd")
	if got := checkHost(1000, binary); got != "containerd needs root" {
		t.Errorf("as a user: %q", got)
	}
	if got := checkHost(0, binary); !strings.Contains(got, binary+" is not installed (apt-get install -y containerd") {
		t.Errorf("without containerd: %q", got)
	}
	if err := os.WriteFile(binary, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := checkHost(0, binary); got != "" {
		t.Errorf("as root with containerd: %q, want nothing in the way", got)
	}

	built := t.TempDir()
	for _, img := range testImages {
		if err := os.WriteFile(filepath.Join(built, img), []byte("tar"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	relative, err := filepath.Rel(mustGetwd(t), built)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		build  func(context.Context) (string, error)
		images []string
		reason string
	}{
		{"no builder", nil, nil, "no test images to run (make test-images)"},
		{"a failing build", func(context.Context) (string, error) {
			return "", errors.New("building the test images (hack/build-test-images.sh): exit status 1\nmore detail")
		}, nil, "building the test images (hack/build-test-images.sh): exit status 1"},
		{"a build without the workload", func(context.Context) (string, error) { return t.TempDir(), nil }, nil, "pause.tar is missing"},
		{"a build into a relative directory gives absolute paths", func(context.Context) (string, error) { return relative, nil },
			[]string{filepath.Join(built, "pause.tar"), filepath.Join(built, "workload.tar")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images, reason := findImages(context.Background(), tt.build)
			if !slices.Equal(images, tt.images) || !strings.Contains(reason, tt.reason) || (tt.reason == "") != (reason == "") {
				t.Fatalf("findImages = %q, %q; want %q, %q", images, reason, tt.images, tt.reason)
			}
			if strings.Contains(reason, "\n") {
				t.Fatalf("the reason %q is more than one line", reason)
			}
		})
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestTheSampleWorkloadsAreAppliedOnlyWithANodeForThem(t *testing.T) {
	kinds := func(withWorkloads bool) []string {
		objs, err := sampleObjects(withWorkloads)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, 0, len(objs))
		for _, o := range objs {
			out = append(out, o.GetKind())
		}
		return out
	}
	without := kinds(false)
	if slices.Contains(without, "Deployment") {
		t.Fatalf("without a node for pods the samples are %q; want no Deployment (it would stay Pending)", without)
	}
	with := kinds(true)
	// Models and nodes before the devices that refer to them; the workload after them all.
	want := []string{"DeviceModel", "EdgeNode", "Device", "Device", "Deployment"}
	if !slices.Equal(with, want) {
		t.Fatalf("with a node for pods the samples are applied as %q, want %q", with, want)
	}
}

func TestTheInstructionsShowHowToRunAWorkloadOnlyWhenANodeRunsPods(t *testing.T) {
	var out bytes.Buffer
	e := &env{out: &out, o: Options{Dir: "/state"}, kubeconfig: "/state/kubeconfig", hubURL: "https://127.0.0.1:10350"}
	e.instructions()
	if strings.Contains(out.String(), "hello-edge") {
		t.Fatalf("without a node for pods the instructions mention the workload:\n%s", out.String())
	}
	out.Reset()
	e.pods = &podRuntime{dataDir: "/state/edges/edge-1", net: 2}
	e.instructions()
	for _, want := range []string{"edge-1 runs pods (Edged on its own containerd, bridge etdev2, pod IPs from 10.235.2.0/24)",
		"kubectl get pods -o wide", "kubectl scale deployment hello-edge", "ls /state/edges/edge-1/edged/logs/pods",
		"'kubectl logs' is not supported yet", "nodeSelector kubernetes.io/hostname: edge-1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the instructions lack %q:\n%s", want, out.String())
		}
	}
}

// A run that was killed leaves edge-1's containerd directory behind (a clean stop removes it);
// the next start removes it, through a containerd started on it. Needs root and Debian's
// containerd, like the other containerd tests ('make test' installs it).
func TestTheNextStartRemovesTheContainerdAKilledRunLeft(t *testing.T) {
	// A short directory: t.TempDir's names are too long for containerd's socket.
	dir, err := os.MkdirTemp("", "etdv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	dataDir := filepath.Join(dir, "edges", "edge-1")
	// A bridge name no dev environment uses (theirs are etdev<N>): purge deletes the bridge.
	bridge := fmt.Sprintf("etdvt%d", os.Getpid()%100000)
	cfg := config.New("https://127.0.0.1:10350", "edge-1")
	cfg.Edged = &config.Edged{Containerd: &config.Containerd{Bridge: bridge, PodSubnet: "10.235.250.0/24"}}
	if err := cfg.Save(dataDir); err != nil {
		t.Fatal(err)
	}
	c, err := containerd.Start(context.Background(), containerd.Config{Dir: containerdDir(dataDir), Bridge: bridge,
		PodSubnet: "10.235.250.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Purge() })
	if err := c.Stop(); err != nil { // as edgecore does when it stops
		t.Fatal(err)
	}
	if err := purgeLeftovers(dir); err != nil {
		t.Fatalf("purgeLeftovers: %v", err)
	}
	if _, err := os.Stat(containerdDir(dataDir)); !os.IsNotExist(err) {
		t.Fatalf("the containerd directory is still there (%v)", err)
	}
	if _, err := config.Load(dataDir); err != nil {
		t.Fatalf("the node's config did not survive: %v", err)
	}
}
