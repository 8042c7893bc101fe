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

// Package cptest is the TestMain of packages whose tests need a real API server.
package cptest

import (
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// Suite is the running control plane of a package's tests.
type Suite struct {
	// Client talks to the API server directly, not through a cache.
	Client client.Client
	// Config is an admin configuration, for managers and the API server's metrics.
	Config *rest.Config
}

// Run starts a control plane (with edgetwin's CRDs), runs the package's tests against it and
// stops it; it returns the exit code for os.Exit. Logs of controller-runtime go to stderr.
func Run(m *testing.M, suite *Suite) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	suite.Config = cp.Config
	if suite.Client, err = cp.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
