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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	// SystemdUnitName is the unit 'edgecore join --install-systemd' writes.
	SystemdUnitName = "edgecore.service"
	// DefaultSystemdDir is where administrators' units go on a systemd machine.
	DefaultSystemdDir = "/etc/systemd/system"
)

// SystemdUnit returns a systemd unit that runs 'BINARY run --data-dir DATADIR' at boot, restarts
// it when it stops, and lets it write only under its data directory. Both paths must be
// absolute.
func SystemdUnit(binary, dataDir string) ([]byte, error) {
	execStart := make([]string, 0, 4)
	for _, arg := range []string{binary, "run", "--data-dir", dataDir} {
		quoted, err := systemdQuote(arg)
		if err != nil {
			return nil, err
		}
		execStart = append(execStart, quoted)
	}
	for _, p := range []string{binary, dataDir} {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("systemd unit: %q is not an absolute path", p)
		}
	}
	rw, _ := systemdQuote(dataDir)
	return fmt.Appendf(nil, `# Written by 'edgecore join --install-systemd'. Start it with:
#   systemctl daemon-reload && systemctl enable --now edgecore
[Unit]
Description=edgetwin edge agent (edgecore)
Documentation=https://github.com/edgetwin/edgetwin/blob/main/docs/install.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=%s
# edgecore keeps working offline and reconnects by itself; it exits only on a fatal error.
Restart=always
RestartSec=5
# SIGTERM lets it close its local store cleanly.
KillSignal=SIGTERM
TimeoutStopSec=30
LimitNOFILE=65536
# It writes only its data directory (store, certificates it renews).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=%s

[Install]
WantedBy=multi-user.target
`, strings.Join(execStart, " "), rw), nil
}

// WriteSystemdUnit writes SystemdUnit(binary, dataDir) to dir/SystemdUnitName, replacing a
// previous one atomically, and returns its path.
func WriteSystemdUnit(dir, binary, dataDir string) (string, error) {
	unit, err := SystemdUnit(binary, dataDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, SystemdUnitName)
	tmp, err := os.CreateTemp(dir, "."+SystemdUnitName+"-*")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(unit); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// systemdQuote quotes one word of a command line as systemd reads it: in double quotes when it
// has spaces, with backslashes and quotes escaped and "%" doubled (systemd's specifiers).
func systemdQuote(s string) (string, error) {
	if s == "" || strings.ContainsAny(s, "\n\r\x00") {
		return "", errors.New("systemd unit: a path may not be empty or hold a line break")
	}
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\;$") {
		return s, nil
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$")
	return `"` + r.Replace(s) + `"`, nil
}
