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
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// edgecore runs on small devices and has no business with the Kubernetes API: it talks to
// cloudcore only, over the certificate API and the websocket. These are what it must never link.
// k8s.io/apimachinery and k8s.io/api stay allowed in the full build, for Edged's pod types.
var bannedOnTheEdge = []string{
	"k8s.io/client-go",
	"sigs.k8s.io/controller-runtime",
	"k8s.io/apiserver",
}

const cloudPackages = "github.com/edgetwin/edgetwin/cloud/"

// bannedDependency says whether edgecore must not link the package at path.
func bannedDependency(path string) bool {
	if strings.HasPrefix(path, cloudPackages) {
		return true
	}
	for _, module := range bannedOnTheEdge {
		if path == module || strings.HasPrefix(path, module+"/") {
			return true
		}
	}
	return false
}

// goListDeps lists everything the edgecore binary links (tests aside) when built with the
// flags, so that it covers every edge package it uses.
func goListDeps(t *testing.T, flags ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the imports: %v", err)
	}
	args := append(append([]string{"list", "-deps"}, flags...), "github.com/edgetwin/edgetwin/cmd/edgecore")
	out, err := exec.Command(goBin, args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	deps := strings.Fields(string(out))
	// Without the edge packages edgecore is built from, go list listed something else, and the
	// checks would prove nothing.
	for _, want := range []string{"github.com/edgetwin/edgetwin/edge/join", "github.com/edgetwin/edgetwin/edge/renew",
		"github.com/edgetwin/edgetwin/edge/twin"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list -deps does not list %s among %d packages; the check would prove nothing", want, len(deps))
		}
	}
	return deps
}

// TestEdgecoreLinksNoCloudPackage fails on any banned dependency of edgecore, in either build.
func TestEdgecoreLinksNoCloudPackage(t *testing.T) {
	for _, flags := range [][]string{nil, {"-tags", "noedged"}} {
		for _, dep := range goListDeps(t, flags...) {
			if bannedDependency(dep) {
				t.Errorf("edgecore %v depends on %s", flags, dep)
			}
		}
	}
}

// podCode is what only Edged needs: the device-only edgecore (build tag noedged) links none of
// it, which is where its smaller binary and resident memory come from (docs/benchmarks.md).
var podCode = []string{
	"github.com/edgetwin/edgetwin/edge/edged",
	"github.com/edgetwin/edgetwin/pkg/containerd",
	"github.com/edgetwin/edgetwin/api/v1alpha1",
	"k8s.io/api",
	"k8s.io/apimachinery",
	"k8s.io/cri-api",
	"k8s.io/cri-client",
	"google.golang.org/grpc",
}

func TestDeviceOnlyEdgecoreLinksNoPodCode(t *testing.T) {
	full := goListDeps(t)
	if !slices.Contains(full, "k8s.io/cri-api/pkg/apis/runtime/v1") {
		t.Fatalf("the full edgecore does not link the CRI API; the list of pod code is out of date")
	}
	for _, dep := range goListDeps(t, "-tags", "noedged") {
		for _, module := range podCode {
			if dep == module || strings.HasPrefix(dep, module+"/") {
				t.Errorf("the device-only edgecore links %s", dep)
			}
		}
	}
}

// TestBannedDependency shows that the check would catch what it is for, and lets through what
// the edge may use.
func TestBannedDependency(t *testing.T) {
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"a cloud package is banned", "github.com/edgetwin/edgetwin/cloud/join", true},
		{"a nested cloud package is banned", "github.com/edgetwin/edgetwin/cloud/hub/internal/x", true},
		{"client-go is banned", "k8s.io/client-go/rest", true},
		{"controller-runtime is banned", "sigs.k8s.io/controller-runtime/pkg/client", true},
		{"the apiserver library is banned", "k8s.io/apiserver/pkg/server", true},
		{"apimachinery is allowed, for the API types", "k8s.io/apimachinery/pkg/apis/meta/v1", false},
		{"k8s.io/utils is allowed, for the clock", "k8s.io/utils/clock", false},
		{"the API types are allowed", "github.com/edgetwin/edgetwin/api/v1alpha1", false},
		{"the certificate API is allowed", "github.com/edgetwin/edgetwin/pkg/certapi", false},
		{"a name that only starts like a banned module is allowed", "k8s.io/client-gopher", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bannedDependency(tt.path); got != tt.want {
				t.Errorf("bannedDependency(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
