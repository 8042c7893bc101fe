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

package twin

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/property"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

func TestDeltaComputation(t *testing.T) {
	props := modelProperties(thermostat("u", nil, nil))
	tw := func(p string, desired, reported *string) meta.Twin {
		return meta.Twin{Property: p, Desired: desired, Reported: reported}
	}
	tests := []struct {
		name  string
		twins []meta.Twin
		want  map[string]string
	}{
		{"a device with nothing desired has no delta", []meta.Twin{tw("setpoint", nil, new("20"))}, nil},
		{"a desired value never reported is in the delta", []meta.Twin{tw("setpoint", new("20"), nil)}, map[string]string{"setpoint": "20"}},
		{"a desired value reported differently is in the delta", []meta.Twin{tw("setpoint", new("20"), new("19"))},
			map[string]string{"setpoint": "20"}},
		{"a number reported in another format is not a difference", []meta.Twin{tw("setpoint", new("21.5"), new("2.150e1"))}, nil},
		{"a boolean compares byte for byte", []meta.Twin{tw("power", new("true"), new("True"))}, map[string]string{"power": "true"}},
		{"only the properties that differ are in the delta",
			[]meta.Twin{tw("setpoint", new("20"), new("20")), tw("power", new("false"), new("true")), tw("temperature", nil, new("3"))},
			map[string]string{"power": "false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			twins := map[string]meta.Twin{}
			for _, r := range tt.twins {
				twins[r.Property] = r
			}
			if got := computeDelta(props, twins); !maps.Equal(got, tt.want) {
				t.Errorf("delta = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDesiredRowsAndVersions(t *testing.T) {
	old := map[string]meta.Twin{
		"setpoint":    {Namespace: "ns", Name: "d", Property: "setpoint", UID: "u1", Desired: new("20"), DesiredVersion: "v1", DesiredAt: 1, Reported: new("20"), ReportedAt: 2},
		"temperature": {Namespace: "ns", Name: "d", Property: "temperature", UID: "u1", DesiredVersion: "v1", DesiredAt: 1, Reported: new("3"), ReportedAt: 2},
		"power":       {Namespace: "ns", Name: "d", Property: "power", UID: "u1", DesiredVersion: "v1", DesiredAt: 1},
		"fan":         {Namespace: "ns", Name: "d", Property: "fan", UID: "u1", DesiredVersion: "v1", DesiredAt: 1},
	}
	tests := []struct {
		name      string
		body      wire.Device
		version   string
		check     func(t *testing.T, put map[string]meta.Twin)
		wantDel   []string
		wantWrite []string
	}{
		{
			name: "a new desired value takes the new version and time and keeps the reported value",
			body: thermostat("u1", new("22"), nil), version: "v2",
			wantWrite: []string{"power", "setpoint", "temperature"}, wantDel: []string{"fan"},
			check: func(t *testing.T, put map[string]meta.Twin) {
				s := put["setpoint"]
				if *s.Desired != "22" || s.DesiredVersion != "v2" || s.DesiredAt != 100 || *s.Reported != "20" || s.ReportedAt != 2 {
					t.Errorf("setpoint = %+v", s)
				}
			},
		},
		{
			name: "an unchanged desired value keeps its time but takes the device's new version",
			body: thermostat("u1", new("20"), nil), version: "v2",
			wantWrite: []string{"power", "setpoint", "temperature"}, wantDel: []string{"fan"},
			check: func(t *testing.T, put map[string]meta.Twin) {
				if s := put["setpoint"]; s.DesiredAt != 1 || s.DesiredVersion != "v2" {
					t.Errorf("setpoint = %+v", s)
				}
			},
		},
		{
			name: "the same version again writes nothing but drops properties the model lost",
			body: thermostat("u1", new("20"), nil), version: "v1",
			wantWrite: nil, wantDel: []string{"fan"},
		},
		{
			name: "a re-created device starts without reported values",
			body: thermostat("u2", new("20"), nil), version: "v9",
			wantWrite: []string{"power", "setpoint", "temperature"}, wantDel: []string{"fan"},
			check: func(t *testing.T, put map[string]meta.Twin) {
				for _, r := range put {
					if r.Reported != nil || r.UID != "u2" {
						t.Errorf("%s = %+v, want no reported value and the new UID", r.Property, r)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put, del := desiredRows("ns", "d", tt.version, tt.body, old, 100)
			byName := map[string]meta.Twin{}
			var names []string
			for _, r := range put {
				byName[r.Property] = r
				names = append(names, r.Property)
			}
			if strings.Join(sorted(names), ",") != strings.Join(tt.wantWrite, ",") || strings.Join(del, ",") != strings.Join(tt.wantDel, ",") {
				t.Errorf("writes %v, deletes %v; want %v and %v", sorted(names), del, tt.wantWrite, tt.wantDel)
			}
			if tt.check != nil {
				tt.check(t, byName)
			}
		})
	}
}

func sorted(s []string) []string {
	return slices.Sorted(slices.Values(s))
}

func TestTwinReportsSayWhichDesiredValueTheyAcknowledge(t *testing.T) {
	mp := &property.Schema{Name: "setpoint", Type: property.TypeDouble}
	tests := []struct {
		name       string
		desired    *string
		reported   string
		wantSynced bool
	}{
		{"a value equal to the desired one acknowledges it", new("20"), "20", true},
		{"a number equal by value acknowledges the desired one", new("20"), "20.0", true},
		{"a different value acknowledges nothing", new("20"), "19", false},
		{"a value with nothing desired acknowledges nothing", nil, "19", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := meta.Twin{Property: "setpoint", Desired: tt.desired, Reported: new(tt.reported), ReportedAt: 5}
			rep := twinReport(mp, r, "v7")
			if rep.Synced != tt.wantSynced || rep.Version != "v7" || rep.Value != tt.reported || rep.Timestamp != 5 {
				t.Errorf("report = %+v", rep)
			}
			if (rep.Desired == nil) != (tt.desired == nil) || (rep.Desired != nil && *rep.Desired != *tt.desired) {
				t.Errorf("report names desired %v, want %v", rep.Desired, tt.desired)
			}
		})
	}
}

// TestImportsStayOnTheEdge keeps edgecore free of the cloud's dependencies.
func TestImportsStayOnTheEdge(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the imports: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/edgetwin/edgetwin/edge/twin").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed %d packages; the check would prove nothing", len(deps))
	}
	for _, dep := range deps {
		for _, banned := range []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/edgetwin/edgetwin/cloud/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("edge/twin depends on %s", dep)
			}
		}
	}
}
