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
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// Field indexes on Device, so that a model or node can find its devices from the cache without
// listing every device in the cluster.
const (
	// IndexDeviceNodeName indexes Devices by spec.nodeName.
	IndexDeviceNodeName = "spec.nodeName"
	// IndexDeviceModelName indexes Devices by spec.modelRef.name (within their namespace).
	IndexDeviceModelName = "spec.modelRef.name"
)

// Options are the optional parts of the controllers' wiring.
type Options struct {
	// Sessions is CloudHub, when cloudcore runs it.
	Sessions Sessions
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// HeartbeatInterval and GracePeriod tune the EdgeNode controller (see EdgeNodeReconciler).
	HeartbeatInterval, GracePeriod time.Duration
	// EdgeCleanupTimeout bounds how long a deleted device waits for its online node to remove it;
	// default DefaultEdgeCleanupTimeout.
	EdgeCleanupTimeout time.Duration
	// DeviceStatus writes the Device status the Device controller derives; cloudcore passes its
	// DeviceReports, so one writer under the shared budget writes each device's status. Nil
	// makes the controller patch status itself (cloudcore without CloudHub).
	DeviceStatus DeviceStatusWriter
}

// SetupWithManager registers the field indexes and every reconciler with the manager. cloudcore
// and the integration tests both call it, so the tests run the wiring that ships.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.Device{}, IndexDeviceNodeName, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Device).Spec.NodeName}
	}); err != nil {
		return fmt.Errorf("indexing devices by node: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Device{}, IndexDeviceModelName, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Device).Spec.ModelRef.Name}
	}); err != nil {
		return fmt.Errorf("indexing devices by model: %w", err)
	}

	c := mgr.GetClient()
	if err := (&DeviceReconciler{Client: c, Sessions: opts.Sessions, Clock: opts.Clock,
		EdgeCleanupTimeout: opts.EdgeCleanupTimeout, StatusWriter: opts.DeviceStatus}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Device controller: %w", err)
	}
	if err := (&DeviceModelReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the DeviceModel controller: %w", err)
	}
	if err := (&EdgeNodeReconciler{Client: c, Sessions: opts.Sessions, Clock: opts.Clock,
		HeartbeatInterval: opts.HeartbeatInterval, GracePeriod: opts.GracePeriod}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the EdgeNode controller: %w", err)
	}
	return nil
}
