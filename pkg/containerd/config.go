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

package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Defaults for Config.
const (
	// DefaultBinary is Debian's containerd.
	DefaultBinary = "/usr/bin/containerd"
	// DefaultCNIBinDir is where Debian's containernetworking-plugins installs the plugins.
	DefaultCNIBinDir = "/usr/lib/cni"
	// DefaultPauseImage is the sandbox image hack/build-test-images.sh builds from
	// test/images/pause. It is a short name that no registry serves: it must be imported.
	DefaultPauseImage = "edgetwin.dev/pause:1"
	// DefaultPodSubnet is the subnet the bridge network hands pod IPs from.
	DefaultPodSubnet = "10.88.0.0/16"
	// DefaultBridge is the name of the Linux bridge the pods' interfaces are attached to.
	DefaultBridge = "edgetwin0"
	// NetworkName is the CNI network's name.
	NetworkName = "edgetwin"
)

// Snapshotters Config.Snapshotter may name.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// cniPlugins are the CNI plugins the pod network uses (containerd adds loopback itself).
var cniPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// packages is what to install when a binary is missing.
const packages = "containerd runc containernetworking-plugins"

// ErrNotInstalled is wrapped by Start's error when containerd, runc or the CNI plugins are
// missing; the message says which Debian packages to install.
var ErrNotInstalled = errors.New("not installed")

// Config says where the private containerd lives and how it is set up.
type Config struct {
	// Dir holds everything: config.toml, containerd.sock, containerd.log, root/ (images,
	// snapshots, metadata: what survives a reboot), cni/ (network config and IP allocations),
	// certs.d/ (registry hosts) and, unless StateDir says otherwise, state/.
	Dir string
	// StateDir is containerd's state directory (tasks, shim bundles, mounts: what a reboot
	// loses); default Dir/state.
	StateDir string
	// Binary is containerd; default DefaultBinary.
	Binary string
	// SandboxImage is the pause image; default DefaultPauseImage.
	SandboxImage string
	// PodSubnet is the CIDR pod IPs come from; default DefaultPodSubnet.
	PodSubnet string
	// Bridge is the bridge interface's name; default DefaultBridge. Two containerds on one
	// machine need different bridges and subnets.
	Bridge string
	// CNIBinDir holds the CNI plugins; default DefaultCNIBinDir.
	CNIBinDir string
	// Snapshotter is overlayfs or native; empty chooses overlayfs when an overlay mount works
	// in Dir, native otherwise.
	Snapshotter string
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("containerd: Dir is required")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, err
	}
	c.Dir = dir
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.Dir, "state")
	}
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	if c.SandboxImage == "" {
		c.SandboxImage = DefaultPauseImage
	}
	if c.PodSubnet == "" {
		c.PodSubnet = DefaultPodSubnet
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = DefaultCNIBinDir
	}
	if _, err := netip.ParsePrefix(c.PodSubnet); err != nil {
		return c, fmt.Errorf("containerd: pod subnet %q: %w", c.PodSubnet, err)
	}
	if len(c.Bridge) > 15 {
		return c, fmt.Errorf("containerd: bridge name %q is longer than 15 characters", c.Bridge)
	}
	switch c.Snapshotter {
	case "", SnapshotterOverlay, SnapshotterNative:
	default:
		return c, fmt.Errorf("containerd: snapshotter %q is neither %s nor %s", c.Snapshotter, SnapshotterOverlay, SnapshotterNative)
	}
	return c, nil
}

// Socket is the path of containerd's gRPC socket.
func (c Config) Socket() string { return filepath.Join(c.Dir, "containerd.sock") }

func (c Config) configFile() string { return filepath.Join(c.Dir, "config.toml") }
func (c Config) logFile() string    { return filepath.Join(c.Dir, "containerd.log") }
func (c Config) rootDir() string    { return filepath.Join(c.Dir, "root") }
func (c Config) cniConfDir() string { return filepath.Join(c.Dir, "cni", "net.d") }
func (c Config) cniDataDir() string { return filepath.Join(c.Dir, "cni", "networks") }
func (c Config) hostsDir() string   { return filepath.Join(c.Dir, "certs.d") }

// checkInstalled fails, naming the packages, when something containerd needs is missing.
func (c Config) checkInstalled() error {
	var missing []string
	if _, err := os.Stat(c.Binary); err != nil {
		missing = append(missing, c.Binary)
	}
	for _, bin := range []string{"containerd-shim-runc-v2", "runc"} {
		if _, err := lookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(c.CNIBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(c.CNIBinDir, p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("containerd: %s %w: install Debian's packages with 'apt-get install -y %s' (make test does)",
			strings.Join(missing, ", "), ErrNotInstalled, packages)
	}
	return nil
}

// lookPath finds a binary in PATH or in the sbin directories, which a non-login root shell may
// lack (Debian installs runc in /usr/sbin).
func lookPath(name string) (string, error) {
	dirs := append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/sbin", "/usr/bin", "/bin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// configTOML is containerd's config (version 2 is what containerd 1.6 reads). Every path is
// inside the private directory; the plugins this machine does not need are disabled so that
// their probes do not clutter the log.
func (c Config) configTOML(snapshotter string) string {
	q := strconv.Quote
	return `version = 2
root = ` + q(c.rootDir()) + `
state = ` + q(c.StateDir) + `
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ` + q(c.Socket()) + `

[ttrpc]
  address = ` + q(c.Socket()+".ttrpc") + `

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ` + q(filepath.Join(c.Dir, "opt")) + `

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(c.SandboxImage) + `
  # This machine refuses to lower oom_score_adj; without this every sandbox fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = ` + q(snapshotter) + `
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(c.CNIBinDir) + `
    conf_dir = ` + q(c.cniConfDir()) + `
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    # One directory per registry host (certs.d/<host:port>/hosts.toml), read at every pull, so
    # a registry can be allowed over plain http while containerd runs.
    config_path = ` + q(c.hostsDir()) + `
`
}

// cniConflist is the pod network: a bridge that is the pods' default gateway, with IPs from
// host-local (its allocations kept in the private directory), NAT for traffic leaving the node,
// and portmap for hostPort (containerd adds loopback itself).
func (c Config) cniConflist() ([]byte, error) {
	prefix := netip.MustParsePrefix(c.PodSubnet).Masked()
	type ipRange struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	type ipam struct {
		Type    string      `json:"type"`
		DataDir string      `json:"dataDir"`
		Ranges  [][]ipRange `json:"ranges"`
	}
	type plugin struct {
		Type             string          `json:"type"`
		Bridge           string          `json:"bridge,omitempty"`
		IsGateway        bool            `json:"isGateway,omitempty"`
		IsDefaultGateway bool            `json:"isDefaultGateway,omitempty"`
		IPMasq           bool            `json:"ipMasq,omitempty"`
		HairpinMode      bool            `json:"hairpinMode,omitempty"`
		IPAM             *ipam           `json:"ipam,omitempty"`
		Capabilities     map[string]bool `json:"capabilities,omitempty"`
	}
	conf := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{CNIVersion: "0.4.0", Name: NetworkName, Plugins: []plugin{
		{Type: "bridge", Bridge: c.Bridge, IsGateway: true, IsDefaultGateway: true, IPMasq: true, HairpinMode: true,
			IPAM: &ipam{Type: "host-local", DataDir: c.cniDataDir(),
				Ranges: [][]ipRange{{{Subnet: prefix.String(), Gateway: prefix.Addr().Next().String()}}}}},
		{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
	}}
	return json.MarshalIndent(conf, "", "  ")
}

// hostsTOML lets containerd pull from host (host:port) over plain http.
func hostsTOML(host string) string {
	u := "http://" + host
	return "server = " + strconv.Quote(u) + "\n\n[host." + strconv.Quote(u) + "]\n" +
		"  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
}

// AllowInsecureRegistry makes containerd pull images of host (host:port) over plain http. It
// takes effect at the next pull; containerd need not restart.
func (c Config) AllowInsecureRegistry(host string) error {
	if _, _, err := net.SplitHostPort(host); err != nil {
		return fmt.Errorf("registry %q is not host:port: %w", host, err)
	}
	dir := filepath.Join(c.hostsDir(), host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hostsTOML(host)), 0o644)
}
