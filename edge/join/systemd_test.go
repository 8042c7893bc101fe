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

package join

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemdUnit(t *testing.T) {
	tests := []struct {
		name, binary, dataDir string
		wantExec, wantRW      string
		wantErr               bool
	}{
		{name: "plain paths are written as they are", binary: "/usr/local/bin/edgecore", dataDir: "/var/lib/edgecore",
			wantExec: "ExecStart=/usr/local/bin/edgecore run --data-dir /var/lib/edgecore\n",
			wantRW:   "ReadWritePaths=/var/lib/edgecore\n"},
		{name: "a path with a space is quoted", binary: "/opt/edge twin/edgecore", dataDir: "/var/lib/edgecore",
			wantExec: `ExecStart="/opt/edge twin/edgecore" run --data-dir /var/lib/edgecore` + "\n"},
		{name: "percent signs are not taken for specifiers", binary: "/usr/bin/edgecore", dataDir: "/srv/100%",
			wantExec: "ExecStart=/usr/bin/edgecore run --data-dir /srv/100%%\n", wantRW: "ReadWritePaths=/srv/100%%\n"},
		{name: "dollar signs are not taken for variables", binary: "/usr/bin/edgecore", dataDir: "/srv/$HOME",
			wantExec: `ExecStart=/usr/bin/edgecore run --data-dir "/srv/$$HOME"` + "\n"},
		{name: "a relative binary is refused", binary: "edgecore", dataDir: "/var/lib/edgecore", wantErr: true},
		{name: "a relative data directory is refused", binary: "/usr/bin/edgecore", dataDir: "data", wantErr: true},
		{name: "a line break is refused", binary: "/usr/bin/edgecore", dataDir: "/var/lib/x\nExecStartPre=/bin/sh", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit, err := SystemdUnit(tt.binary, tt.dataDir)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SystemdUnit(%q, %q) = nil error, want one", tt.binary, tt.dataDir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tt.wantExec, tt.wantRW, "[Install]\nWantedBy=multi-user.target\n", "Restart=always\n"} {
				if !strings.Contains(string(unit), want) {
					t.Errorf("the unit lacks %q:\n%s", want, unit)
				}
			}
		})
	}
}

func TestWriteSystemdUnitReplacesTheOldOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "system")
	if _, err := WriteSystemdUnit(dir, "/old/edgecore", "/var/lib/edgecore"); err != nil {
		t.Fatal(err)
	}
	path, err := WriteSystemdUnit(dir, "/usr/local/bin/edgecore", "/var/lib/edgecore")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, SystemdUnitName) {
		t.Errorf("path = %s", path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "ExecStart=/usr/local/bin/edgecore run") || strings.Contains(string(got), "/old/") {
		t.Errorf("the unit was not replaced:\n%s", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the unit: %v", len(entries), entries)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", info.Mode().Perm())
	}
}
