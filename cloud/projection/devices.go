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

package projection

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/devicemodel"
	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/controllers"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Devices projects Device objects onto their nodes: a node holds each Device whose
// spec.nodeName names it, merged with its model. A device whose model does not exist is not
// held anywhere (the edge could not check a single value of it); its ModelResolved condition
// says why.
type Devices struct {
	// Reader is the manager's cache, with the Device indexes of controllers.SetupWithManager.
	Reader client.Reader
}

var _ hub.Projection = (*Devices)(nil)

// Kind is wire.KindDevice.
func (d *Devices) Kind() wire.Kind { return wire.KindDevice }

// List returns every device of the node.
func (d *Devices) List(ctx context.Context, node string) ([]hub.Object, error) {
	var list v1alpha1.DeviceList
	if err := d.Reader.List(ctx, &list, client.MatchingFields{controllers.IndexDeviceNodeName: node}); err != nil {
		return nil, fmt.Errorf("listing the devices of node %s: %w", node, err)
	}
	out := make([]hub.Object, 0, len(list.Items))
	for i := range list.Items {
		o, ok, err := d.project(ctx, &list.Items[i])
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// Get returns the device named by ref if node should hold it.
func (d *Devices) Get(ctx context.Context, node string, ref wire.ObjectRef) (hub.Object, bool, error) {
	dev := &v1alpha1.Device{}
	if err := d.Reader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, dev); err != nil {
		if apierrors.IsNotFound(err) {
			return hub.Object{}, false, nil
		}
		return hub.Object{}, false, err
	}
	if dev.Spec.NodeName != node {
		return hub.Object{}, false, nil
	}
	return d.project(ctx, dev)
}

func (d *Devices) project(ctx context.Context, dev *v1alpha1.Device) (hub.Object, bool, error) {
	if dev.DeletionTimestamp != nil {
		// Deleted, held by its finalizer until the node confirms removing it.
		return hub.Object{}, false, nil
	}
	model := &v1alpha1.DeviceModel{}
	if err := d.Reader.Get(ctx, types.NamespacedName{Namespace: dev.Namespace, Name: dev.Spec.ModelRef.Name}, model); err != nil {
		if apierrors.IsNotFound(err) {
			return hub.Object{}, false, nil
		}
		return hub.Object{}, false, err
	}
	o, err := hub.NewObject(wire.KindDevice, dev.Namespace, dev.Name, Merge(dev, model))
	return o, err == nil, err
}

// Merge builds what the edge holds for a device: the model's properties in model order, each
// with the device's desired value (unless the model check refuses it) and report period.
func Merge(dev *v1alpha1.Device, model *v1alpha1.DeviceModel) *wire.Device {
	refused := map[string]bool{}
	for _, p := range devicemodel.CheckDesired(&model.Spec, dev.Spec.Properties) {
		refused[p.Property] = true
	}
	settings := map[string]*v1alpha1.DeviceProperty{}
	for i := range dev.Spec.Properties {
		settings[dev.Spec.Properties[i].Name] = &dev.Spec.Properties[i]
	}
	out := &wire.Device{UID: string(dev.UID), Model: model.Name, Protocol: model.Spec.Protocol}
	if p := dev.Spec.Protocol; p != nil {
		if p.Name != "" {
			out.Protocol = p.Name
		}
		if p.Config != nil && len(p.Config.Raw) > 0 {
			out.ProtocolConfig = json.RawMessage(p.Config.Raw)
		}
	}
	for _, mp := range model.Spec.Properties {
		access := mp.AccessMode
		if access == "" {
			access = v1alpha1.AccessModeReadOnly
		}
		wp := wire.DeviceProperty{Name: mp.Name, Type: string(mp.Type), AccessMode: string(access), Unit: mp.Unit,
			Minimum: mp.Minimum, Maximum: mp.Maximum}
		if s, ok := settings[mp.Name]; ok {
			if s.Desired != nil && !refused[mp.Name] {
				wp.Desired = s.Desired
			}
			if s.ReportPeriod != nil {
				wp.ReportPeriod = s.ReportPeriod.Duration.String()
			}
		}
		out.Properties = append(out.Properties, wp)
	}
	return out
}

// Notifier is the part of the hub a projection drives.
type Notifier interface {
	Changed(ctx context.Context, node string, ref wire.ObjectRef)
}

// WatchDevices tells n about every change that can alter what a node holds: a Device added,
// changed, moved (both nodes) or deleted, and a DeviceModel changed or deleted (each of its
// devices). Status-only changes reach n too; the content version makes them send nothing.
func (d *Devices) WatchDevices(ctx context.Context, c cache.Cache, n Notifier) error {
	devInformer, err := c.GetInformer(ctx, &v1alpha1.Device{})
	if err != nil {
		return fmt.Errorf("getting the Device informer: %w", err)
	}
	changed := func(obj any) {
		if dev, ok := unwrap(obj).(*v1alpha1.Device); ok {
			n.Changed(ctx, dev.Spec.NodeName, wire.ObjectRef{Kind: wire.KindDevice, Namespace: dev.Namespace, Name: dev.Name})
		}
	}
	if _, err := devInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: changed,
		UpdateFunc: func(oldObj, newObj any) {
			oldDev, okOld := oldObj.(*v1alpha1.Device)
			newDev, okNew := newObj.(*v1alpha1.Device)
			if okOld && okNew && oldDev.Spec.NodeName != newDev.Spec.NodeName {
				changed(oldObj) // the old node must drop it
			}
			changed(newObj)
		},
		DeleteFunc: changed,
	}); err != nil {
		return fmt.Errorf("watching Devices: %w", err)
	}

	modelInformer, err := c.GetInformer(ctx, &v1alpha1.DeviceModel{})
	if err != nil {
		return fmt.Errorf("getting the DeviceModel informer: %w", err)
	}
	modelChanged := func(obj any) {
		model, ok := unwrap(obj).(*v1alpha1.DeviceModel)
		if !ok {
			return
		}
		var list v1alpha1.DeviceList
		if err := d.Reader.List(ctx, &list, client.InNamespace(model.Namespace),
			client.MatchingFields{controllers.IndexDeviceModelName: model.Name}); err != nil {
			return
		}
		for i := range list.Items {
			changed(&list.Items[i])
		}
	}
	if _, err := modelInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    modelChanged,
		UpdateFunc: func(_, newObj any) { modelChanged(newObj) },
		DeleteFunc: modelChanged,
	}); err != nil {
		return fmt.Errorf("watching DeviceModels: %w", err)
	}
	return nil
}

// unwrap returns the object inside a deletion tombstone.
func unwrap(obj any) any {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
