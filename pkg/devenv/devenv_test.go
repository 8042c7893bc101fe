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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binDir makes a directory with stand-ins named like the binaries, for the checks that only
// look for the files.
func binDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOptionsAreCheckedBeforeAnythingStarts(t *testing.T) {
	all := binDir(t, "cloudcore", "edgecore", "edgetwin-sim")
	noSim := binDir(t, "cloudcore", "edgecore")
	good := Options{Dir: t.TempDir(), Edges: 2, Devices: 4, HubPort: 10350, BinDir: all}
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"valid", func(*Options) {}, ""},
		{"no directory", func(o *Options) { o.Dir = "" }, "a state directory is needed"},
		{"no edge node", func(o *Options) { o.Edges = 0 }, "--edges must be at least 1"},
		{"negative devices", func(o *Options) { o.Devices = -1 }, "--devices must not be negative"},
		{"a port out of range", func(o *Options) { o.HubPort = 70000 }, "--hub-port 70000 is not a port"},
		{"a missing binary", func(o *Options) { o.BinDir = noSim }, "edgetwin-sim is not in " + noSim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.change(&o)
			err := o.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A refused option changes nothing: Run returns before creating the state directory.
	dir := filepath.Join(t.TempDir(), "state")
	o := good
	o.Dir, o.Edges = dir, 0
	if err := Run(context.Background(), o); err == nil {
		t.Fatal("Run with --edges 0 succeeded")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Run with bad options created %s (%v)", dir, err)
	}
}

func TestTheStateDirectoryIsHeldByOneProcess(t *testing.T) {
	dir := t.TempDir()
	// A live process (a sleeping child) holds it.
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "dev.pid"), fmt.Appendf(nil, "%d\n", sleeper.Process.Pid), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lock(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", sleeper.Process.Pid)) {
		t.Fatalf("lock with a live holder = %v, want a refusal naming its pid", err)
	}
	// The holder died without cleaning up: the stale file is taken over.
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	unlock, err := lock(dir)
	if err != nil {
		t.Fatalf("lock over a stale pid file: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "dev.pid"))
	if strings.TrimSpace(string(raw)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("dev.pid = %q, want this process", raw)
	}
	unlock()
	if _, err := os.Stat(filepath.Join(dir, "dev.pid")); !os.IsNotExist(err) {
		t.Fatalf("unlock left dev.pid (%v)", err)
	}
}

func TestAnEdgeKeepsItsBrokerAddressAcrossStarts(t *testing.T) {
	e := &env{}
	dir := filepath.Join(t.TempDir(), "edge-1")
	first, err := e.brokerAddress(dir)
	if err != nil || !strings.HasPrefix(first, "127.0.0.1:") {
		t.Fatalf("brokerAddress = %q, %v", first, err)
	}
	again, err := e.brokerAddress(dir)
	if err != nil || again != first {
		t.Fatalf("the second brokerAddress = %q, %v; want %q kept", again, err, first)
	}
}

func TestAChildThatDiesBeforeItIsReadyIsReportedWithItsLog(t *testing.T) {
	sup := newSupervisor(t.TempDir())
	c, err := sup.start("failing", "/bin/sh", "-c", "echo cannot bind the port >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = waitReady(context.Background(), c, "http://127.0.0.1:1/never", 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "failing exited: exit status 3") || !strings.Contains(err.Error(), "cannot bind the port") {
		t.Fatalf("waitReady = %v; want the exit and the end of the log", err)
	}
}

func TestStopAllStopsEveryChild(t *testing.T) {
	sup := newSupervisor(t.TempDir())
	kids := make([]*child, 0, 3)
	for i := range 3 {
		c, err := sup.start(fmt.Sprintf("sleeper-%d", i), "sleep", "60")
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, c)
	}
	sup.stopAll()
	for _, c := range kids {
		if !c.exitedEarly() {
			t.Fatalf("%s still runs after stopAll", c.name)
		}
	}
}
