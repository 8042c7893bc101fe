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
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/pkg/devenv"
)

const fakeToken = "abc234.abcdefghijklmnopqrstuvwxyz.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestTokenCreateParsesFlagsAroundTheNodeAndPrintsTheJoinLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		want       tokenCreateOptions
		wantServer string
	}{
		{name: "defaults apply when only the node is given", args: []string{"token", "create", "edge-7"},
			want:       tokenCreateOptions{node: "edge-7", ttl: time.Hour, namespace: "edgetwin-system", caSecret: "edgetwin-ca"},
			wantServer: serverPlaceholder},
		{name: "flags after the node are parsed", args: []string{"token", "create", "edge-7", "--ttl", "30m", "--server", "10.0.0.5:10002"},
			want:       tokenCreateOptions{node: "edge-7", ttl: 30 * time.Minute, namespace: "edgetwin-system", caSecret: "edgetwin-ca", server: "https://10.0.0.5:10002"},
			wantServer: "https://10.0.0.5:10002"},
		{name: "flags before the node are parsed", args: []string{"token", "create", "-namespace=edge-ns", "--kubeconfig", "/k", "edge-7",
			"--server=https://cloud.example.com", "--ca-secret", "my-ca"},
			want: tokenCreateOptions{node: "edge-7", ttl: time.Hour, namespace: "edge-ns", kubeconfig: "/k", caSecret: "my-ca",
				server: "https://cloud.example.com"},
			wantServer: "https://cloud.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got tokenCreateOptions
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr, func(_ context.Context, o tokenCreateOptions) (string, error) {
				got = o
				return fakeToken, nil
			})
			if code != exitOK {
				t.Fatalf("exit code %d; stderr: %s", code, &stderr)
			}
			if got != tt.want {
				t.Errorf("options = %+v, want %+v", got, tt.want)
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			wantLine := "edgecore join --server " + tt.wantServer + " --token " + fakeToken + " --name edge-7 --data-dir /var/lib/edgecore"
			if len(lines) != 2 || lines[0] != fakeToken || lines[1] != wantLine {
				t.Errorf("stdout = %q, want the token and then %q", stdout.String(), wantLine)
			}
		})
	}
}

func TestTokenCreateRefusesBadInputWithExitCode2(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "no command is refused", args: nil, wantStderr: "Usage"},
		{name: "an unknown command is refused", args: []string{"tokens"}, wantStderr: "unknown command"},
		{name: "token without create is refused", args: []string{"token"}, wantStderr: "unknown command"},
		{name: "a missing node is refused", args: []string{"token", "create", "--ttl", "1h"}, wantStderr: "node name is missing"},
		{name: "two nodes are refused", args: []string{"token", "create", "edge-1", "edge-2"}, wantStderr: "one node name expected"},
		{name: "a node name with upper case is refused", args: []string{"token", "create", "Edge-7"}, wantStderr: "invalid node name"},
		{name: "a node name with an underscore is refused", args: []string{"token", "create", "edge_7"}, wantStderr: "invalid node name"},
		{name: "a ttl that is not a duration is refused", args: []string{"token", "create", "edge-7", "--ttl", "soon"}, wantStderr: "-ttl"},
		{name: "a ttl without a unit is refused", args: []string{"token", "create", "edge-7", "--ttl", "3600"}, wantStderr: "-ttl"},
		{name: "a zero ttl is refused", args: []string{"token", "create", "edge-7", "--ttl", "0s"}, wantStderr: "--ttl must be positive"},
		{name: "a negative ttl is refused", args: []string{"token", "create", "edge-7", "--ttl=-1h"}, wantStderr: "--ttl must be positive"},
		{name: "an unknown flag is refused", args: []string{"token", "create", "edge-7", "--name", "x"}, wantStderr: "flag provided but not defined"},
		{name: "a plain-HTTP server is refused", args: []string{"token", "create", "edge-7", "--server", "http://10.0.0.5"}, wantStderr: "https only"},
		{name: "a server with a path is refused", args: []string{"token", "create", "edge-7", "--server", "https://10.0.0.5/join"},
			wantStderr: "--server"},
		{name: "an invalid namespace is refused", args: []string{"token", "create", "edge-7", "--namespace", "Edge System"}, wantStderr: "--namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			called := false
			code := run(context.Background(), tt.args, &stdout, &stderr, func(context.Context, tokenCreateOptions) (string, error) {
				called = true
				return fakeToken, nil
			})
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if called {
				t.Error("the token was created despite the bad input")
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", &stderr, tt.wantStderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", &stdout)
			}
		})
	}
}

func TestTokenCreateReportsFailuresWithExitCode1(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"token", "create", "edge-7"}, &stdout, &stderr,
		func(context.Context, tokenCreateOptions) (string, error) {
			return "", errors.New("reading the CA Secret edgetwin-system/edgetwin-ca: connection refused")
		})
	if code != exitFailure || !strings.Contains(stderr.String(), "connection refused") || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the cause on stderr only", code, &stdout, &stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"token", "create", "-h"}, {"token", "create", "edge-7", "--help"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr, func(context.Context, tokenCreateOptions) (string, error) {
			t.Error("help created a token")
			return "", nil
		})
		if code != exitOK || !strings.Contains(stdout.String(), "Usage") {
			t.Errorf("%q: exit %d, stdout %q", args, code, &stdout)
		}
	}
}

func TestDevFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string // an error substring; "" for success
		checkFn func(t *testing.T, o devenv.Options)
	}{
		{"defaults", nil, "", func(t *testing.T, o devenv.Options) {
			if o.Dir != ".dev" || o.Edges != 2 || o.Devices != 4 || o.HubPort != 10350 || o.Fresh || o.Mosquitto || o.BinDir == "" {
				t.Fatalf("defaults = %+v", o)
			}
		}},
		{"every flag", []string{"--dir", "/tmp/x", "--fresh", "--edges", "3", "--devices", "0", "--kubeconfig", "/k",
			"--mosquitto", "--hub-port", "11000", "--bin-dir", "/b"}, "", func(t *testing.T, o devenv.Options) {
			if o.Dir != "/tmp/x" || !o.Fresh || o.Edges != 3 || o.Devices != 0 || o.Kubeconfig != "/k" || !o.Mosquitto ||
				o.HubPort != 11000 || o.BinDir != "/b" {
				t.Fatalf("options = %+v", o)
			}
		}},
		{"a stray argument", []string{"now"}, `unexpected arguments ["now"]`, nil},
		{"a bad number", []string{"--edges", "many"}, `invalid value "many" for flag -edges`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseDev(tt.args, io.Discard)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("parseDev(%q) = %v, want an error containing %q", tt.args, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDev(%q): %v", tt.args, err)
			}
			tt.checkFn(t, o)
		})
	}
}

func TestDevRefusesBadFlagsWithUsageExit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dev", "--edges", "0", "--bin-dir", t.TempDir()}, &stdout, &stderr, nil); code != exitFailure ||
		!strings.Contains(stderr.String(), "--edges must be at least 1") {
		t.Fatalf("edgetwin dev --edges 0 = %d, stderr %q", code, stderr.String())
	}
	if code := run(context.Background(), []string{"dev", "extra"}, &stdout, &stderr, nil); code != exitUsage {
		t.Fatalf("edgetwin dev extra = %d, want %d", code, exitUsage)
	}
}
