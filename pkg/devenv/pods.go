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
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/pkg/containerd"
)

// PodsNode is the edge node that runs pods (Edged on its own containerd) when containerd can
// run here; the sample Deployment is pinned to it.
const PodsNode = "edge-1"

// The pod networks of dev environments: number n (1..maxNetworks) is bridge etdev<n> with pods
// in 10.235.<n>.0/24. The tests' containerds use etdt<n> and 10.234.<n>.0/24 (containerdtest).
const (
	maxNetworks  = 200
	bridgePrefix = "etdev"
)

// testImages are the tarballs edge-1's containerd imports at every start.
var testImages = []string{"pause.tar", "workload.tar"}

// podRuntime is how PodsNode runs pods: edgecore's own containerd in the node's data directory,
// on a network no other dev environment on this machine uses while this one runs.
type podRuntime struct {
	dataDir string
	net     int
	images  []string
	release func() // gives the network back
}

func (p *podRuntime) bridge() string { return fmt.Sprintf("%s%d", bridgePrefix, p.net) }
func (p *podRuntime) subnet() string { return fmt.Sprintf("10.235.%d.0/24", p.net) }

// containerdDir is where edgecore keeps its containerd: the default, "containerd" in its data
// directory.
func containerdDir(dataDir string) string { return filepath.Join(dataDir, "containerd") }

// joinArgs are the flags 'edgecore join' gets for the node.
func (p *podRuntime) joinArgs() []string {
	args := make([]string, 0, 5+2*len(p.images))
	args = append(args, "--containerd", "--bridge", p.bridge(), "--pod-subnet", p.subnet())
	for _, img := range p.images {
		args = append(args, "--image", img)
	}
	return args
}

// edged is the edged section joinArgs make 'edgecore join' write: a stored config that differs
// was joined with other settings (or before containerd was available) and is joined again.
func (p *podRuntime) edged() *config.Edged {
	if p == nil {
		return nil
	}
	return &config.Edged{Containerd: &config.Containerd{PodSubnet: p.subnet(), Bridge: p.bridge(), Images: p.images}}
}

// describe says what the node runs pods on, for people.
func (p *podRuntime) describe() string {
	return fmt.Sprintf("Edged on its own containerd, bridge %s, pod IPs from %s", p.bridge(), p.subnet())
}

// preparePods decides whether PodsNode runs pods: as root, with the test images built, and with
// a containerd that really starts here (the check starts one in the node's containerd directory
// and purges it again, which also clears what an earlier run that did not stop cleanly left).
// When it cannot, it returns nil and the reason in one line.
func (e *env) preparePods(ctx context.Context) (*podRuntime, string) {
	if reason := checkHost(os.Geteuid(), containerd.DefaultBinary); reason != "" {
		return nil, reason
	}
	images, reason := findImages(ctx, e.o.TestImages)
	if reason != "" {
		return nil, reason
	}
	dataDir := filepath.Join(e.o.Dir, "edges", PodsNode)
	p := &podRuntime{dataDir: dataDir, images: images}
	var err error
	preferred := 0
	if stored, err := config.Load(dataDir); err == nil && stored.Edged != nil && stored.Edged.Containerd != nil {
		_, _ = fmt.Sscanf(stored.Edged.Containerd.Bridge, bridgePrefix+"%d", &preferred)
	}
	if p.net, p.release, err = lockNetwork(os.TempDir(), preferred, hostPrefixes()); err != nil {
		return nil, err.Error()
	}
	probe, err := containerd.Start(ctx, p.containerdConfig())
	if err != nil {
		p.release()
		return nil, "containerd does not start here: " + firstLine(err.Error())
	}
	if err := probe.Purge(); err != nil {
		p.release()
		return nil, "cleaning up containerd after its check: " + firstLine(err.Error())
	}
	return p, ""
}

// checkHost says why containerd cannot run for a process with euid on a machine whose
// containerd binary should be at binary; "" when nothing stands in the way so far.
func checkHost(euid int, binary string) string {
	if euid != 0 {
		return "containerd needs root"
	}
	if _, err := os.Stat(binary); err != nil {
		return fmt.Sprintf("%s is not installed (apt-get install -y containerd runc containernetworking-plugins)", binary)
	}
	return ""
}

// findImages builds or finds the test images through build and returns their absolute paths
// (written into edgecore.yaml, which would resolve relative ones against the data directory),
// or why there are none.
func findImages(ctx context.Context, build func(context.Context) (string, error)) ([]string, string) {
	if build == nil {
		return nil, "no test images to run (make test-images)"
	}
	dir, err := build(ctx)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		return nil, firstLine(err.Error())
	}
	images := make([]string, 0, len(testImages))
	for _, img := range testImages {
		path := filepath.Join(dir, img)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Sprintf("the test image %s is missing (make test-images)", path)
		}
		images = append(images, path)
	}
	return images, ""
}

// containerdConfig is the containerd edgecore starts for the node's config.
func (p *podRuntime) containerdConfig() containerd.Config {
	return containerd.Config{Dir: containerdDir(p.dataDir), Bridge: p.bridge(), PodSubnet: p.subnet()}
}

// purgeLeftovers stops and removes, for every edge node whose stored config has edgecore start a
// containerd, what that containerd left: an earlier run that was killed leaves the containers
// running in their shims and their root file systems mounted. The node's own settings are used
// so that CNI releases exactly the addresses and network namespaces it handed out.
func purgeLeftovers(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	configs, err := filepath.Glob(filepath.Join(dir, "edges", "*", config.FileName))
	if err != nil {
		return err
	}
	var errs []error
	for _, path := range configs {
		dataDir := filepath.Dir(path)
		cfg, err := config.Load(dataDir)
		if err != nil || cfg.Edged == nil || cfg.Edged.Containerd == nil {
			continue
		}
		cc := cfg.Edged.Containerd
		ctdDir := containerdDir(dataDir)
		if cc.Dir != "" {
			ctdDir = config.Path(dataDir, cc.Dir)
		}
		if _, err := os.Stat(ctdDir); err != nil {
			continue // stopped cleanly: nothing left
		}
		errs = append(errs, purge(containerd.Config{Dir: ctdDir, Bridge: cc.Bridge, PodSubnet: cc.PodSubnet}))
	}
	return errors.Join(errs...)
}

// purge stops every pod sandbox of the containerd configured by cfg and removes it all: the
// containers, their network namespaces and addresses, the mounts, the directory and the bridge.
// edgecore leaves its containers running when it stops (a restarted edgecore finds them), so a
// containerd is started on the directory once more, for CRI to tear the sandboxes down; if it
// cannot start, the shims and containers are killed all the same.
func purge(cfg containerd.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := containerd.Start(ctx, cfg)
	if err != nil {
		return errors.Join(fmt.Errorf("starting containerd to clean up %s: %w", cfg.Dir, err),
			containerd.KillShims(filepath.Join(cfg.Dir, "containerd.sock")))
	}
	err = c.Purge()
	if cfg.Bridge != "" {
		// The CNI bridge plugin creates the bridge and never removes it.
		_ = exec.Command("ip", "link", "delete", cfg.Bridge).Run()
	}
	return err
}

// lockNetwork takes one of the dev pod networks for as long as this process runs or until
// release is called: an flock on a file in lockDir, so that two dev environments on one machine
// never share a bridge or a subnet. preferred (the one the node used last time, 0 for none) is
// tried first; a network whose subnet overlaps an address on one of this machine's interfaces
// (other than its own bridge, left from an earlier run) is skipped.
func lockNetwork(lockDir string, preferred int, addrs map[string][]netip.Prefix) (n int, release func(), err error) {
	candidates := make([]int, 0, maxNetworks+1)
	if preferred >= 1 && preferred <= maxNetworks {
		candidates = append(candidates, preferred)
	}
	for i := 1; i <= maxNetworks; i++ {
		if i != preferred {
			candidates = append(candidates, i)
		}
	}
	for _, n := range candidates {
		if overlapsHost(n, addrs) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("edgetwin-dev-net-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("taking a pod network: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		return n, func() { _ = f.Close() }, nil
	}
	return 0, nil, fmt.Errorf("every pod network %s1..%d is in use by another edgetwin dev or overlaps this machine's addresses",
		bridgePrefix, maxNetworks)
}

// overlapsHost says whether network n's subnet overlaps an address of an interface other than
// its own bridge.
func overlapsHost(n int, addrs map[string][]netip.Prefix) bool {
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.235.%d.0/24", n))
	own := fmt.Sprintf("%s%d", bridgePrefix, n)
	for iface, prefixes := range addrs {
		if iface == own {
			continue
		}
		for _, p := range prefixes {
			if p.Overlaps(subnet) {
				return true
			}
		}
	}
	return false
}

// hostPrefixes lists this machine's interface addresses by interface.
func hostPrefixes() map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	ifaces, err := net.Interfaces()
	if err != nil {
		return out
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out[iface.Name] = append(out[iface.Name], p)
			}
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
