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

// Package config is edgecore's config file: where CloudHub is, who this node is, where its
// credentials and data live, and the MQTT broker. 'edgecore join' writes it; 'edgecore run'
// reads it. Everything the node needs to keep working without the cloud is here, on the node.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// FileName is the config file's name inside the data directory.
const FileName = "edgecore.yaml"

// DefaultBrokerAddress is where mappers look for the MQTT broker.
const DefaultBrokerAddress = "127.0.0.1:1883"

// Broker modes.
const (
	// BrokerInternal runs an MQTT broker inside edgecore.
	BrokerInternal = "internal"
	// BrokerExternal connects to an external broker such as mosquitto.
	BrokerExternal = "external"
)

// Config is the content of edgecore.yaml.
type Config struct {
	// Server is CloudHub's address, https://host:port (the join endpoint and, as wss, the hub).
	Server string `json:"server"`
	// NodeName is this node's EdgeNode name; the certificate says the same.
	NodeName string `json:"nodeName"`
	// Paths of the node's credentials and local store; relative paths are inside the data
	// directory.
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	CAFile   string `json:"caFile"`
	Database string `json:"database"`
	// Broker is the MQTT broker mappers talk to.
	Broker Broker `json:"broker"`
	// Edged runs the node's pods; without it (or without a runtime in it) Edged is off and the
	// node serves devices only.
	Edged *Edged `json:"edged,omitempty"`
}

// Edged configures the pods' container runtime: an existing CRI endpoint, or the project's own
// containerd started by edgecore (Debian's containerd, runc and containernetworking-plugins).
type Edged struct {
	// RuntimeEndpoint is an existing CRI endpoint, for example
	// unix:///run/containerd/containerd.sock.
	RuntimeEndpoint string `json:"runtimeEndpoint,omitempty"`
	// Containerd, if set, makes edgecore start its own containerd and use it.
	Containerd *Containerd `json:"containerd,omitempty"`
	// RootDir holds the pods' volumes and logs; default "edged" in the data directory.
	RootDir string `json:"rootDir,omitempty"`
	// MaxPods is the node's pod capacity; default 110.
	MaxPods int `json:"maxPods,omitempty"`
}

// Containerd configures the containerd edgecore starts (see pkg/containerd).
type Containerd struct {
	// Dir holds its config, socket, root and CNI state; default "containerd" in the data
	// directory.
	Dir string `json:"dir,omitempty"`
	// StateDir is its state directory (what a reboot loses); default Dir/state.
	StateDir string `json:"stateDir,omitempty"`
	// PodSubnet is the CIDR of pod IPs on the bridge; default 10.88.0.0/16.
	PodSubnet string `json:"podSubnet,omitempty"`
	// Bridge is the bridge interface's name; default edgetwin0.
	Bridge string `json:"bridge,omitempty"`
	// SandboxImage is the pause image; default edgetwin.dev/pause:1.
	SandboxImage string `json:"sandboxImage,omitempty"`
	// Snapshotter is overlayfs or native; empty chooses what works.
	Snapshotter string `json:"snapshotter,omitempty"`
	// Images are image tarballs imported at every start (the pause image, workloads for a node
	// without a registry).
	Images []string `json:"images,omitempty"`
}

// Enabled says whether Edged runs: a runtime endpoint or a containerd is configured.
func (e *Edged) Enabled() bool { return e != nil && (e.RuntimeEndpoint != "" || e.Containerd != nil) }

// Broker configures the MQTT EventBus.
type Broker struct {
	// Mode is "internal" (a broker inside edgecore) or "external".
	Mode string `json:"mode"`
	// Address is host:port: where the internal broker listens, or where the external one is.
	Address string `json:"address"`
	// Username and Password authenticate to an external broker.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// New returns the config 'edgecore join' writes for a node.
func New(server, nodeName string) *Config {
	return &Config{Server: server, NodeName: nodeName, CertFile: "node.crt", KeyFile: "node.key", CAFile: "ca.crt",
		Database: "edgecore.db", Broker: Broker{Mode: BrokerInternal, Address: DefaultBrokerAddress}}
}

// Validate checks the config and says what is wrong.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Server); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("server %q is not an https://host:port URL", c.Server))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("nodeName is empty"))
	}
	for name, v := range map[string]string{"certFile": c.CertFile, "keyFile": c.KeyFile, "caFile": c.CAFile, "database": c.Database} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", name))
		}
	}
	if c.Broker.Mode != BrokerInternal && c.Broker.Mode != BrokerExternal {
		errs = append(errs, fmt.Errorf("broker.mode %q is neither %q nor %q", c.Broker.Mode, BrokerInternal, BrokerExternal))
	}
	if _, _, err := net.SplitHostPort(c.Broker.Address); err != nil {
		errs = append(errs, fmt.Errorf("broker.address %q is not host:port", c.Broker.Address))
	}
	if e := c.Edged; e != nil {
		if e.RuntimeEndpoint != "" && e.Containerd != nil {
			errs = append(errs, errors.New("edged: set runtimeEndpoint or containerd, not both"))
		}
		if e.RuntimeEndpoint != "" && !strings.HasPrefix(e.RuntimeEndpoint, "unix://") {
			errs = append(errs, fmt.Errorf("edged.runtimeEndpoint %q is not a unix:// address", e.RuntimeEndpoint))
		}
		if e.MaxPods < 0 {
			errs = append(errs, fmt.Errorf("edged.maxPods %d is negative", e.MaxPods))
		}
	}
	return errors.Join(errs...)
}

// HubURL is the websocket address of CloudHub.
func (c *Config) HubURL() string {
	u, _ := url.Parse(c.Server)
	u.Scheme = "wss"
	return u.String()
}

// Path resolves a configured path against the data directory.
func Path(dataDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dataDir, p)
}

// Load reads and validates dataDir/edgecore.yaml.
func Load(dataDir string) (*Config, error) {
	path := filepath.Join(dataDir, FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: join the node first with 'edgecore join'", path)
		}
		return nil, err
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(raw, c); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes dataDir/edgecore.yaml atomically (it may hold a broker password, so 0600).
func (c *Config) Save(dataDir string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	raw, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dataDir, FileName), raw, 0o600)
}

// WriteFileAtomic writes a file through a temporary file and a rename, so a crash leaves the
// old file or the new one, never half of one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
