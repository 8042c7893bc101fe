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

// Package integration runs edgetwin's binaries as real processes against a real API server:
// cloudcore, edgecore and kubectl, with real websockets, TLS and SQLite. It is part of 'make
// test'; it builds the binaries itself (they are this repository's; the control plane comes
// from 'make control-plane').
package integration

import (
	"fmt"
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/test/harness"
)

var (
	cl  *harness.Cluster
	k8s client.Client
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	var err error
	if cl, err = harness.Setup("cloudcore", "edgecore"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cl.Close()
	k8s = cl.Client
	return m.Run()
}
