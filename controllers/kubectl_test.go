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

package controllers

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/gomega"

	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// kubectl runs the real kubectl against the suite's API server and returns stdout, stderr and
// the error (non-nil on a non-zero exit).
func kubectl(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		bin = filepath.Join(controlplane.AssetsDir(), "kubectl")
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Fatalf("kubectl is needed for this test and is not on PATH or in %s", controlplane.AssetsDir())
		}
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

var columnGap = regexp.MustCompile(`\s{2,}`)

// table splits kubectl's table output into rows of cells; cells are separated by two or more
// spaces, which keeps "LAST SEEN" one cell.
func table(out string) [][]string {
	var rows [][]string //nolint:prealloc // the line count is not known before splitting
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		rows = append(rows, columnGap.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

// TestKubectlShowsSamples applies config/samples with real kubectl, as a user would, and checks
// what 'kubectl get' prints for every kind: the columns, and the values the controllers fill in.
func TestKubectlShowsSamples(t *testing.T) {
	out, stderr, err := kubectl(t, "", "apply", "-f", filepath.Join("..", "config", "samples"))
	if err != nil {
		t.Fatalf("kubectl apply -f config/samples: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{"devicemodel.edgetwin.dev/thermostat", "device.edgetwin.dev/lobby-thermostat",
		"device.edgetwin.dev/office-thermostat", "edgenode.edgetwin.dev/edge-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output %q does not mention %s", out, want)
		}
	}

	devices := [][]string{
		{"lobby-thermostat", "edge-1", "thermostat", "Unknown", "False"},
		{"office-thermostat", "edge-1", "thermostat", "Unknown", "False"},
	}
	tests := []struct {
		name   string
		args   []string
		header []string
		rows   [][]string // the cells before AGE (AGE and later vary)
	}{
		{"devices", []string{"get", "devices", "-n", "default"},
			[]string{"NAME", "NODE", "MODEL", "STATE", "SYNCED", "AGE"}, devices},
		{"devices wide", []string{"get", "devices", "-n", "default", "-o", "wide"},
			[]string{"NAME", "NODE", "MODEL", "STATE", "SYNCED", "AGE", "LAST SEEN"}, devices},
		{"devicemodels", []string{"get", "devicemodels", "-n", "default"},
			[]string{"NAME", "PROTOCOL", "PROPERTIES", "DEVICES", "AGE"},
			[][]string{{"thermostat", "simulator", "3", "2"}}},
		{"edgenodes", []string{"get", "edgenodes", "edge-1"},
			[]string{"NAME", "CONNECTED", "READY", "DEVICES", "VERSION", "AGE"},
			[][]string{{"edge-1", "False", "False", "2"}}}, // VERSION is blank until an agent reports one
		{"devices by short name", []string{"get", "dev", "-n", "default"},
			[]string{"NAME", "NODE", "MODEL", "STATE", "SYNCED", "AGE"}, devices},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The controllers fill in status shortly after the apply; wait for the row to settle.
			var last string
			eventually(t, func() bool {
				out, stderr, err := kubectl(t, "", tt.args...)
				last = out + stderr
				if err != nil {
					return false
				}
				rows := table(out)
				if len(rows) != len(tt.rows)+1 || !slices.Equal(rows[0], tt.header) {
					return false
				}
				for i, want := range tt.rows {
					if len(rows[i+1]) < len(want) || !slices.Equal(rows[i+1][:len(want)], want) {
						return false
					}
				}
				return true
			}).Should(gomega.BeTrue(), func() string { return "last output:\n" + last })
		})
	}

	// The category lists every edgetwin kind at once.
	out, stderr, err = kubectl(t, "", "get", "edgetwin", "-A", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get edgetwin: %v\n%s", err, stderr)
	}
	for _, want := range []string{"device.edgetwin.dev/lobby-thermostat", "devicemodel.edgetwin.dev/thermostat", "edgenode.edgetwin.dev/edge-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get edgetwin -A does not list %s:\n%s", want, out)
		}
	}
}

// TestKubectlRefusesABadManifest shows what a user sees for a mistake the schema catches: a
// non-zero exit, a message naming the field, and nothing created.
func TestKubectlRefusesABadManifest(t *testing.T) {
	ns := newNamespace(t)
	bad := strings.Replace(validModel, "type: double, minimum", "type: decimal, minimum", 1)
	_, stderr, err := kubectl(t, bad, "apply", "-n", ns, "-f", "-")
	if err == nil {
		t.Fatal("kubectl apply of a model with type decimal succeeded")
	}
	for _, want := range []string{"spec.properties[0].type", `Unsupported value: "decimal"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("kubectl's error %q does not contain %q", stderr, want)
		}
	}
	out, _, err := kubectl(t, "", "get", "devicemodels", "-n", ns, "-o", "name")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("after the refusal, the namespace holds %q (err %v), want nothing", out, err)
	}
}

// TestKubectlVersionReportsTheBuiltServer checks the ldflags of hack/build-control-plane.sh:
// kubectl must see the API server as v1.37.2, not as a development build.
func TestKubectlVersionReportsTheBuiltServer(t *testing.T) {
	out, stderr, err := kubectl(t, "", "version", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, stderr)
	}
	var v struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
			Major      string `json:"major"`
			Minor      string `json:"minor"`
		} `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("parsing kubectl version output %q: %v", out, err)
	}
	want := "v" + controlplane.KubernetesVersion
	if v.ServerVersion.GitVersion != want || v.ServerVersion.Major != "1" || v.ServerVersion.Minor != "37" {
		t.Fatalf("server version = %+v, want %s (major 1, minor 37)", v.ServerVersion, want)
	}
}
