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
// k8s.io/apimachinery and k8s.io/utils stay allowed, for api/v1alpha1's types and the clock.
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

// TestEdgecoreLinksNoCloudPackage lists everything the edgecore binary links (tests aside), so
// that it covers every edge package it uses, and fails on any banned dependency.
func TestEdgecoreLinksNoCloudPackage(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the imports: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/edgetwin/edgetwin/cmd/edgecore").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	// Without the edge packages edgecore is built from, go list listed something else, and the
	// check would prove nothing.
	for _, want := range []string{"github.com/edgetwin/edgetwin/edge/join", "github.com/edgetwin/edgetwin/edge/renew"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list -deps does not list %s among %d packages; the check would prove nothing", want, len(deps))
		}
	}
	for _, dep := range deps {
		if bannedDependency(dep) {
			t.Errorf("edgecore depends on %s", dep)
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
