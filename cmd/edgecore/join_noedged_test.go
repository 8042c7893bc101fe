//go:build noedged

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
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/edgetwin/edgetwin/edge/agent"
)

// A device-only edgecore refuses at join every flag that would write an edged section, before
// a token is spent, and joins a device-only node as the full build does.
func TestDeviceOnlyJoinRefusesRuntimeFlags(t *testing.T) {
	args := []string{"--server", "https://cloud.example:10350", "--name", "edge-7",
		"--token", "abc234.abcdefghijklmnopqrstuvwxyz." + strings.Repeat("0", 64)}
	for _, flags := range [][]string{{"--containerd"}, {"--runtime-endpoint", "unix:///run/containerd/containerd.sock"}} {
		_, err := parseJoin(append(append([]string{}, args...), flags...), io.Discard)
		if !errors.Is(err, agent.ErrNoEdged) || !errors.Is(err, errUsage) {
			t.Errorf("join %v = %v, want the usage error that this build cannot run pods", flags, err)
		}
	}
	req, err := parseJoin(args, io.Discard)
	if err != nil || req.cfg.Edged != nil {
		t.Fatalf("join without runtime flags = %+v, %v; want a device-only config", req, err)
	}
}
