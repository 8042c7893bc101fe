//go:build !noedged

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
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/edge/config"
)

// joinArgs are the flags every join needs; a test appends its own. The token is well formed
// but no server is ever contacted: parseJoin only reads flags.
var joinArgs = []string{"--server", "https://cloud.example:10350", "--name", "edge-7",
	"--token", "abc234.abcdefghijklmnopqrstuvwxyz." + strings.Repeat("0", 64)}

func TestJoinFlagsWriteTheEdgedSection(t *testing.T) {
	dir := t.TempDir()
	pause := filepath.Join(dir, "pause.tar")
	workload := filepath.Join(dir, "workload.tar")
	for _, p := range []string{pause, workload} {
		if err := os.WriteFile(p, []byte("tar"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A relative --image or --containerd-dir is relative to where join runs, and written
	// absolute: the config resolves relative paths against the data directory.
	t.Chdir(dir)
	tests := []struct {
		name  string
		flags []string
		want  *config.Edged
	}{
		{"without runtime flags the node serves devices only", nil, nil},
		{"--containerd alone starts edgecore's containerd with its defaults",
			[]string{"--containerd"}, &config.Edged{Containerd: &config.Containerd{}}},
		{"the containerd flags fill in its section",
			[]string{"--containerd", "--containerd-dir", "/srv/ctd", "--pod-subnet", "10.235.1.0/24", "--bridge", "etdev1",
				"--image", pause, "--image", "workload.tar", "--max-pods", "20"},
			&config.Edged{MaxPods: 20, Containerd: &config.Containerd{Dir: "/srv/ctd", PodSubnet: "10.235.1.0/24",
				Bridge: "etdev1", Images: []string{pause, workload}}}},
		{"a relative containerd directory is made absolute",
			[]string{"--containerd", "--containerd-dir", "ctd"}, &config.Edged{Containerd: &config.Containerd{Dir: filepath.Join(dir, "ctd")}}},
		{"--runtime-endpoint uses an existing runtime",
			[]string{"--runtime-endpoint", "unix:///run/containerd/containerd.sock", "--max-pods", "50"},
			&config.Edged{RuntimeEndpoint: "unix:///run/containerd/containerd.sock", MaxPods: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseJoin(append(append([]string{}, joinArgs...), tt.flags...), io.Discard)
			if err != nil {
				t.Fatalf("parseJoin: %v", err)
			}
			if !reflect.DeepEqual(r.cfg.Edged, tt.want) {
				t.Fatalf("edged = %+v, want %+v", r.cfg.Edged, tt.want)
			}
			// What join writes is what 'edgecore run' reads back.
			data := t.TempDir()
			if err := r.cfg.Save(data); err != nil {
				t.Fatal(err)
			}
			got, err := config.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Edged, tt.want) {
				t.Fatalf("after Save and Load, edged = %+v, want %+v", got.Edged, tt.want)
			}
		})
	}
}

func TestJoinRefusesBadRuntimeFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"a containerd and an existing runtime at once",
			[]string{"--containerd", "--runtime-endpoint", "unix:///run/containerd/containerd.sock"}, "exclude each other"},
		{"a containerd setting without --containerd", []string{"--pod-subnet", "10.235.0.0/24"}, "--pod-subnet configures"},
		{"a bridge for an existing runtime",
			[]string{"--runtime-endpoint", "unix:///run/c.sock", "--bridge", "br0"}, "--bridge configures the containerd edgecore starts"},
		{"an image without --containerd", []string{"--image", "pause.tar"}, "add --containerd"},
		{"a pod capacity without a runtime", []string{"--max-pods", "10"}, "--max-pods needs --containerd or --runtime-endpoint"},
		{"a negative pod capacity", []string{"--containerd", "--max-pods", "-1"}, "--max-pods -1 is negative"},
		{"an endpoint that is not a unix socket", []string{"--runtime-endpoint", "tcp://10.0.0.1:1"}, "not a unix:///PATH address"},
		{"an endpoint without a path", []string{"--runtime-endpoint", "unix://"}, "not a unix:///PATH address"},
		{"a subnet that is not a CIDR", []string{"--containerd", "--pod-subnet", "10.235.0.0"}, "is not a CIDR"},
		{"a subnet with host bits", []string{"--containerd", "--pod-subnet", "10.235.0.1/24"}, "did you mean 10.235.0.0/24?"},
		{"a bridge name Linux cannot hold", []string{"--containerd", "--bridge", "a-very-long-bridge"}, "not a Linux interface name"},
		{"an empty bridge name", []string{"--containerd", "--bridge", ""}, "not a Linux interface name"},
		{"a missing image tarball", []string{"--containerd", "--image", filepath.Join(dir, "nope.tar")}, "nope.tar: stat"},
		{"an image that is a directory", []string{"--containerd", "--image", dir}, "is not a file"},
		{"an empty containerd directory", []string{"--containerd", "--containerd-dir", ""}, "--containerd-dir is empty"},
		// The config package's own validation still applies to the rest.
		{"a bad broker mode next to good runtime flags", []string{"--containerd", "--broker-mode", "cloud"}, `broker.mode "cloud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseJoin(append(append([]string{}, joinArgs...), tt.flags...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseJoin = %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, errUsage) {
				t.Fatalf("parseJoin = %v, want a usage error (exit 2)", err)
			}
		})
	}
}

// A refused flag stops join before anything is contacted or written.
func TestABadRuntimeFlagWritesNothing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	args := append([]string{"join", "--data-dir", data, "--containerd", "--bridge", "far-too-long-a-name"}, joinArgs...)
	if err := run(context.Background(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("run = %v, want a usage error", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a refused join created %s (%v)", data, err)
	}
}

func TestTheJoinMessageSaysWherePodsRun(t *testing.T) {
	cfg := config.New("https://cloud.example:10350", "edge-7")
	if got := podsLine(cfg, "/var/lib/edgecore"); got != "" {
		t.Fatalf("a device-only node's line = %q, want none", got)
	}
	cfg.Edged = &config.Edged{Containerd: &config.Containerd{}}
	if got := podsLine(cfg, "/var/lib/edgecore"); got != ", running pods on its own containerd in /var/lib/edgecore/containerd" {
		t.Fatalf("line = %q", got)
	}
	cfg.Edged = &config.Edged{RuntimeEndpoint: "unix:///run/containerd/containerd.sock"}
	if got := podsLine(cfg, "/var/lib/edgecore"); got != ", running pods on unix:///run/containerd/containerd.sock" {
		t.Fatalf("line = %q", got)
	}
}
