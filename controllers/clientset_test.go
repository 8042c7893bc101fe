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
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/pkg/client/clientset/versioned"
	"github.com/edgetwin/edgetwin/pkg/client/informers/externalversions"
)

// TestGeneratedClientset uses the clientset, informers and listers from pkg/client the way a
// program that is not a controller would (the CLI, the simulator): create, watch through an
// informer, read from the lister, and update status through the status subresource.
func TestGeneratedClientset(t *testing.T) {
	ns := newNamespace(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	factory := externalversions.NewSharedInformerFactoryWithOptions(cs, time.Hour, externalversions.WithNamespace(ns))
	devices := factory.Edgetwin().V1alpha1().Devices()
	lister := devices.Lister()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), devices.Informer().HasSynced) {
		t.Fatal("the device informer did not sync")
	}

	created, err := cs.EdgetwinV1alpha1().Devices(ns).Create(ctx, thermostat(ns, "via-clientset", uniqueNode(), "20"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating through the clientset: %v", err)
	}
	eventually(t, func() error {
		_, err := lister.Devices(ns).Get("via-clientset")
		return err
	}).Should(gomega.Succeed())

	created.Status.State = v1alpha1.DeviceStateOnline
	created.Status.Twins = []v1alpha1.Twin{{Name: "setpoint", Reported: &v1alpha1.TwinValue{Value: "20"}}}
	eventually(t, func() error {
		latest, err := cs.EdgetwinV1alpha1().Devices(ns).Get(ctx, "via-clientset", metav1.GetOptions{})
		if err != nil {
			return err
		}
		latest.Status.State, latest.Status.Twins = created.Status.State, created.Status.Twins
		_, err = cs.EdgetwinV1alpha1().Devices(ns).UpdateStatus(ctx, latest, metav1.UpdateOptions{})
		return err
	}).Should(gomega.Succeed())
	eventually(t, func() string {
		d, err := lister.Devices(ns).Get("via-clientset")
		if err != nil || len(d.Status.Twins) == 0 {
			return ""
		}
		return d.Status.Twins[0].Reported.Value
	}).Should(gomega.Equal("20"))

	// EdgeNodes are cluster-scoped in the clientset too.
	name := uniqueNode()
	if _, err := cs.EdgetwinV1alpha1().EdgeNodes().Create(ctx, &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating an EdgeNode: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.EdgetwinV1alpha1().EdgeNodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	if _, err := cs.EdgetwinV1alpha1().EdgeNodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatalf("getting EdgeNode %s: %v", name, err)
	}
}
