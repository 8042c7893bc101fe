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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgetwin/edgetwin/edge/agent"
	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/join"
)

// maxInterfaceName is the longest name Linux gives a network interface (IFNAMSIZ - 1).
const maxInterfaceName = 15

// joinRequest is what 'edgecore join' was asked to do: the config to write and how to join.
type joinRequest struct {
	cfg            *config.Config
	token          string
	dataDir        string
	caFile         string
	force          bool
	installSystemd bool
	systemdDir     string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// edgedFlags are the flags that write the config's edged section.
type edgedFlags struct {
	containerd      bool
	containerdDir   string
	podSubnet       string
	bridge          string
	images          stringList
	runtimeEndpoint string
	maxPods         int
}

func (f *edgedFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.containerd, "containerd", false,
		"Run pods: Edged on a containerd that edgecore starts itself (Debian's containerd, runc and containernetworking-plugins; as root).")
	fs.StringVar(&f.containerdDir, "containerd-dir", "",
		"With --containerd: where that containerd keeps its config, socket, images and state (default: containerd in --data-dir).")
	fs.StringVar(&f.podSubnet, "pod-subnet", "",
		"With --containerd: the CIDR pod IPs come from (default "+defaultPodSubnet+"); nodes on one machine need their own.")
	fs.StringVar(&f.bridge, "bridge", "",
		"With --containerd: the Linux bridge pods are attached to (default "+defaultBridge+"); nodes on one machine need their own.")
	fs.Var(&f.images, "image",
		"With --containerd: an image tarball (OCI or docker archive) imported at every start; repeatable. The pause image is one.")
	fs.StringVar(&f.runtimeEndpoint, "runtime-endpoint", "",
		"Run pods: Edged on this existing CRI runtime, unix:///PATH (instead of --containerd).")
	fs.IntVar(&f.maxPods, "max-pods", 0, "With --containerd or --runtime-endpoint: the node's pod capacity (default 110).")
}

// The defaults edgecore's containerd applies to what the config leaves empty (pkg/containerd's,
// named here for the help text only: edgecore join never writes them).
const (
	defaultPodSubnet = "10.88.0.0/16"
	defaultBridge    = "edgetwin0"
)

// edged turns the flags into the config's edged section: nil when no runtime was asked for.
// set names the flags given on the command line. Paths become absolute, because the config
// resolves relative paths against the data directory, not where join ran.
func (f *edgedFlags) edged(set map[string]bool) (*config.Edged, error) {
	if f.containerd && f.runtimeEndpoint != "" {
		return nil, errors.New("--containerd and --runtime-endpoint exclude each other: " +
			"edgecore either starts its own containerd or uses an existing runtime")
	}
	if !f.containerd {
		for _, name := range []string{"containerd-dir", "pod-subnet", "bridge", "image"} {
			if set[name] {
				return nil, fmt.Errorf("--%s configures the containerd edgecore starts: add --containerd", name)
			}
		}
	}
	if !f.containerd && f.runtimeEndpoint == "" {
		if set["max-pods"] {
			return nil, errors.New("--max-pods needs --containerd or --runtime-endpoint: without a runtime the node runs no pods")
		}
		return nil, nil
	}
	if f.maxPods < 0 {
		return nil, fmt.Errorf("--max-pods %d is negative", f.maxPods)
	}
	e := &config.Edged{MaxPods: f.maxPods}
	if f.runtimeEndpoint != "" {
		if !strings.HasPrefix(f.runtimeEndpoint, "unix://") || len(f.runtimeEndpoint) == len("unix://") {
			return nil, fmt.Errorf("--runtime-endpoint %q is not a unix:///PATH address", f.runtimeEndpoint)
		}
		e.RuntimeEndpoint = f.runtimeEndpoint
		return e, nil
	}
	c := &config.Containerd{PodSubnet: f.podSubnet, Bridge: f.bridge}
	if set["containerd-dir"] {
		if f.containerdDir == "" {
			return nil, errors.New("--containerd-dir is empty")
		}
		dir, err := filepath.Abs(f.containerdDir)
		if err != nil {
			return nil, fmt.Errorf("--containerd-dir: %w", err)
		}
		c.Dir = dir
	}
	if set["pod-subnet"] {
		p, err := netip.ParsePrefix(f.podSubnet)
		if err != nil {
			return nil, fmt.Errorf("--pod-subnet %q is not a CIDR such as %s", f.podSubnet, defaultPodSubnet)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("--pod-subnet %q has host bits set; did you mean %s?", f.podSubnet, p.Masked())
		}
	}
	if set["bridge"] {
		if f.bridge == "" || len(f.bridge) > maxInterfaceName || strings.ContainsAny(f.bridge, "/: \t\n") {
			return nil, fmt.Errorf("--bridge %q is not a Linux interface name (1 to %d characters, no '/', ':' or spaces)",
				f.bridge, maxInterfaceName)
		}
	}
	for _, img := range f.images {
		abs, err := filepath.Abs(img)
		if err != nil {
			return nil, fmt.Errorf("--image %s: %w", img, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("--image %s: %w", img, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("--image %s is not a file (an image tarball is expected)", img)
		}
		c.Images = append(c.Images, abs)
	}
	e.Containerd = c
	return e, nil
}

// parseJoin reads 'edgecore join's flags into a request whose config has passed the config
// package's validation; nothing is contacted or written.
func parseJoin(args []string, stderr io.Writer) (*joinRequest, error) {
	fs := flag.NewFlagSet("edgecore join", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "CloudHub's address, https://HOST:PORT.")
	token := fs.String("token", "", "The join token from 'edgetwin token create NODE'.")
	name := fs.String("name", "", "This node's name; the token must be bound to it.")
	dataDir := fs.String("data-dir", "/var/lib/edgecore", "Where the config, credentials and local store go.")
	caFile := fs.String("ca-file", "", "Trust CloudHub through this CA file (it must still match the token's pin).")
	force := fs.Bool("force", false, "Join again even if the data directory holds a config (keeps the local store).")
	brokerMode := fs.String("broker-mode", config.BrokerInternal,
		"MQTT broker for mappers: \"internal\" (runs inside edgecore) or \"external\" (for example mosquitto).")
	brokerAddr := fs.String("broker-address", config.DefaultBrokerAddress,
		"Where the internal broker listens, or the external broker to dial (host:port).")
	var ef edgedFlags
	ef.register(fs)
	installSystemd := fs.Bool("install-systemd", false,
		"Also write a systemd unit that runs 'edgecore run' for this node at boot (this binary, this data directory).")
	systemdDir := fs.String("systemd-dir", join.DefaultSystemdDir, "Where --install-systemd writes "+join.SystemdUnitName+".")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	for _, required := range []struct{ flag, value string }{{"--server", *server}, {"--token", *token}, {"--name", *name}} {
		if required.value == "" {
			return nil, fmt.Errorf("%w: %s is required", errUsage, required.flag)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	edged, err := ef.edged(set)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if edged.Enabled() && !agent.EdgedBuiltIn {
		// Refused at join, before a token is spent on a node that could not start.
		return nil, fmt.Errorf("%w: %w", errUsage, agent.ErrNoEdged)
	}
	cfg := config.New(*server, *name)
	cfg.Broker.Mode, cfg.Broker.Address = *brokerMode, *brokerAddr
	cfg.Edged = edged
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return &joinRequest{cfg: cfg, token: *token, dataDir: *dataDir, caFile: *caFile, force: *force,
		installSystemd: *installSystemd, systemdDir: *systemdDir}, nil
}

func joinCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	r, err := parseJoin(args, stderr)
	if err != nil {
		return err
	}
	cfg := r.cfg
	if _, err := os.Stat(filepath.Join(r.dataDir, config.FileName)); err == nil && !r.force {
		return fmt.Errorf("%w: %s already holds a joined node; use --force to join again", errUsage, r.dataDir)
	}
	var opts []join.Option
	if r.caFile != "" {
		opts = append(opts, join.WithCAFile(r.caFile))
	}
	res, err := join.Join(ctx, cfg.Server, r.token, cfg.NodeName, opts...)
	if err != nil {
		return err
	}
	// The key first and the config last: a config only exists once everything it names does.
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{config.Path(r.dataDir, cfg.KeyFile), res.KeyPEM, 0o600},
		{config.Path(r.dataDir, cfg.CertFile), res.CertificatePEM, 0o644},
		{config.Path(r.dataDir, cfg.CAFile), res.CAPEM, 0o644},
	}
	for _, f := range files {
		if err := config.WriteFileAtomic(f.path, f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	if err := cfg.Save(r.dataDir); err != nil {
		return err
	}
	validUntil := res.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	pods := podsLine(cfg, r.dataDir)
	if !r.installSystemd {
		_, _ = fmt.Fprintf(stdout, "node %s joined (certificate valid until %s)%s; start it with:\n  edgecore run --data-dir %s\n",
			res.NodeName, validUntil, pods, r.dataDir)
		return nil
	}
	unit, err := installUnit(r.systemdDir, r.dataDir)
	if err != nil {
		return fmt.Errorf("node %s joined, but writing its systemd unit failed (run 'edgecore run --data-dir %s' by hand): %w",
			res.NodeName, r.dataDir, err)
	}
	_, _ = fmt.Fprintf(stdout, "node %s joined (certificate valid until %s)%s; wrote %s, start it with:\n"+
		"  systemctl daemon-reload && systemctl enable --now edgecore\n", res.NodeName, validUntil, pods, unit)
	return nil
}

// podsLine says, for the join's message, where the node will run pods.
func podsLine(cfg *config.Config, dataDir string) string {
	switch e := cfg.Edged; {
	case !e.Enabled():
		return ""
	case e.RuntimeEndpoint != "":
		return ", running pods on " + e.RuntimeEndpoint
	default:
		dir := e.Containerd.Dir
		if dir == "" {
			dir = "containerd"
		}
		return ", running pods on its own containerd in " + config.Path(dataDir, dir)
	}
}

// installUnit writes the systemd unit for this very binary and dataDir, both made absolute.
func installUnit(systemdDir, dataDir string) (string, error) {
	binary, err := os.Executable()
	if err != nil {
		return "", err
	}
	if binary, err = filepath.EvalSymlinks(binary); err != nil {
		return "", err
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return "", err
	}
	return join.WriteSystemdUnit(systemdDir, binary, dataDir)
}
