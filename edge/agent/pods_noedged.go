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

package agent

import (
	"context"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// A device-only edgecore (go build -tags noedged) leaves Edged out, and with it the container
// runtime's client (gRPC, the CRI API) and Kubernetes' pod types: on a device gateway it keeps
// DeviceTwin, EventBus, MetaManager and EdgeHub, in a binary a quarter smaller and with less
// memory resident (docs/benchmarks.md has the figures).

// EdgedBuiltIn says whether this edgecore can run pods.
const EdgedBuiltIn = false

// podRuntime is never made in this build; its methods let the agent's wiring stay the same.
type podRuntime struct{}

// newWorkloads refuses a config with a container runtime; without one there is nothing to run.
func newWorkloads(cfg *config.Config, _ string, _ *meta.Store, _ func(), _ logr.Logger) (*podRuntime, error) {
	if cfg.Edged.Enabled() {
		return nil, ErrNoEdged
	}
	return nil, nil
}

func (*podRuntime) ObjectStored(wire.ObjectRef, []byte)                            {}
func (*podRuntime) ObjectDeleted(wire.ObjectRef)                                   {}
func (*podRuntime) run(context.Context)                                            {}
func (*podRuntime) registerMetrics(_, _ func(name, help string, f func() float64)) {}
