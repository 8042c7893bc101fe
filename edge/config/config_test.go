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

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveAndLoad(t *testing.T) {
	dir := t.TempDir()
	c := New("https://cloud.example:10350", "edge-1")
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v; want 0600", err, info.Mode())
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *c || got.HubURL() != "wss://cloud.example:10350" || got.Broker.Address != DefaultBrokerAddress {
		t.Fatalf("loaded %+v", got)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"a misspelt field", "server: https://a:1\nnodeNmae: x\n", "unknown field"},
		{"plain http", "server: http://a:1\nnodeName: x\ncertFile: c\nkeyFile: k\ncaFile: a\ndatabase: d\nbroker: {mode: internal, address: 127.0.0.1:1883}\n", "not an https://host:port URL"},
		{"an unknown broker mode", "server: https://a:1\nnodeName: x\ncertFile: c\nkeyFile: k\ncaFile: a\ndatabase: d\nbroker: {mode: cloud, address: 127.0.0.1:1883}\n", "broker.mode"},
		{"not YAML", "{{{", "parsing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "join the node first") {
		t.Fatalf("Load of an empty directory = %v", err)
	}
}

func TestEdgedSettings(t *testing.T) {
	cases := []struct {
		name    string
		edged   *Edged
		enabled bool
		wantErr string
	}{
		{"a node without edged settings serves devices only", nil, false, ""},
		{"edged settings without a runtime leave Edged off", &Edged{RootDir: "pods"}, false, ""},
		{"an existing CRI endpoint turns Edged on", &Edged{RuntimeEndpoint: "unix:///run/containerd/containerd.sock"}, true, ""},
		{"the project's own containerd turns Edged on", &Edged{Containerd: &Containerd{PodSubnet: "10.88.0.0/16"}}, true, ""},
		{"an endpoint and a containerd at once are refused",
			&Edged{RuntimeEndpoint: "unix:///x.sock", Containerd: &Containerd{}}, true, "not both"},
		{"an endpoint that is not a unix socket is refused", &Edged{RuntimeEndpoint: "tcp://1.2.3.4:1"}, true, "unix://"},
		{"a negative pod capacity is refused", &Edged{RuntimeEndpoint: "unix:///x.sock", MaxPods: -1}, true, "maxPods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New("https://cloud.example:10350", "edge-1")
			c.Edged = tc.edged
			if got := c.Edged.Enabled(); got != tc.enabled {
				t.Errorf("Enabled() = %v, want %v", got, tc.enabled)
			}
			err := c.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			dir := t.TempDir()
			if err := c.Save(dir); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.Edged.Enabled() != tc.enabled {
				t.Errorf("after a save and a load, Enabled() = %v, want %v", got.Edged.Enabled(), tc.enabled)
			}
		})
	}
}
