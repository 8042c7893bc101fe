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
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/config/crd"
)

// TestCRDsInstall checks that every generated CRD is established with the names, scope, short
// name and category users rely on.
func TestCRDsInstall(t *testing.T) {
	crds, err := crd.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind, short string
		namespaced  bool
	}{
		"devices.edgetwin.dev":      {"Device", "dev", true},
		"devicemodels.edgetwin.dev": {"DeviceModel", "dm", true},
		"edgenodes.edgetwin.dev":    {"EdgeNode", "en", false},
	}
	if len(crds) != len(want) {
		t.Fatalf("config/crd/bases holds %d CRDs, want %d", len(crds), len(want))
	}
	for name, w := range want {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			t.Fatalf("CRD %s is not installed: %v", name, err)
		}
		established := false
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not established", name)
		}
		if got.Spec.Names.Kind != w.kind || !slices.Contains(got.Spec.Names.ShortNames, w.short) ||
			!slices.Contains(got.Spec.Names.Categories, "edgetwin") {
			t.Errorf("CRD %s names = %+v, want kind %s, short name %s, category edgetwin", name, got.Spec.Names, w.kind, w.short)
		}
		if (got.Spec.Scope == apiextensionsv1.NamespaceScoped) != w.namespaced {
			t.Errorf("CRD %s scope = %s", name, got.Spec.Scope)
		}
		if v := got.Spec.Versions[0]; v.Subresources == nil || v.Subresources.Status == nil {
			t.Errorf("CRD %s has no status subresource", name)
		}
	}
}

const validModel = `
apiVersion: edgetwin.dev/v1alpha1
kind: DeviceModel
metadata: {name: m}
spec:
  protocol: simulator
  properties:
  - {name: temperature, type: double, minimum: "-40", maximum: "85"}
  - {name: setpoint, type: double, accessMode: ReadWrite}
`

const validDevice = `
apiVersion: edgetwin.dev/v1alpha1
kind: Device
metadata: {name: d}
spec:
  modelRef: {name: m}
  nodeName: edge-1
  properties:
  - {name: setpoint, desired: "21.5", reportPeriod: 10s}
`

// TestSchemaRejectsBadManifests sends manifests that the schema alone can judge wrong: each must
// be refused with a message that points at the mistake, and must create nothing.
func TestSchemaRejectsBadManifests(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name     string
		manifest string
		edit     func(obj map[string]any) // changes a valid manifest into the bad one
		want     []string                 // substrings of the API server's message
	}{
		{"a property type outside the enum", validModel, func(o map[string]any) {
			props(o)[0].(map[string]any)["type"] = "integer"
		}, []string{"spec.properties[0].type", `Unsupported value: "integer"`, `"int"`, `"double"`}},
		{"an access mode outside the enum", validModel, func(o map[string]any) {
			props(o)[1].(map[string]any)["accessMode"] = "WriteOnly"
		}, []string{"spec.properties[1].accessMode", `Unsupported value: "WriteOnly"`}},
		{"two model properties with one name", validModel, func(o map[string]any) {
			props(o)[1].(map[string]any)["name"] = "temperature"
		}, []string{"spec.properties[1]", "Duplicate value", "temperature"}},
		{"two device properties with one name", validDevice, func(o map[string]any) {
			spec(o)["properties"] = []any{map[string]any{"name": "setpoint"}, map[string]any{"name": "setpoint"}}
		}, []string{"spec.properties[1]", "Duplicate value"}},
		{"a desired value of the wrong JSON type", validDevice, func(o map[string]any) {
			props(o)[0].(map[string]any)["desired"] = 22
		}, []string{"spec.properties[0].desired", "must be of type string"}},
		{"a property list that is not a list", validModel, func(o map[string]any) {
			spec(o)["properties"] = "temperature"
		}, []string{"spec.properties", "must be of type array"}},
		{"a minimum above the maximum", validModel, func(o map[string]any) {
			props(o)[0].(map[string]any)["minimum"] = "90"
		}, []string{"spec.properties[0]", "minimum must not be greater than maximum"}},
		{"a range on a string property", validModel, func(o map[string]any) {
			props(o)[0].(map[string]any)["type"] = "string"
		}, []string{"minimum and maximum apply only to int, float and double properties"}},
		{"a decimal bound on an int property", validModel, func(o map[string]any) {
			props(o)[0].(map[string]any)["type"] = "int"
			props(o)[0].(map[string]any)["minimum"] = "-40.5"
		}, []string{"minimum and maximum of an int property must be integers"}},
		{"a bound that is not a number", validModel, func(o map[string]any) {
			props(o)[0].(map[string]any)["maximum"] = "hot"
		}, []string{"spec.properties[0].maximum", "should match"}},
		{"a model without properties", validModel, func(o map[string]any) {
			spec(o)["properties"] = []any{}
		}, []string{"spec.properties", "should have at least 1 items"}},
		{"a device without a node", validDevice, func(o map[string]any) {
			delete(spec(o), "nodeName")
		}, []string{"spec.nodeName", "Required value"}},
		{"a node name that is not a DNS name", validDevice, func(o map[string]any) {
			spec(o)["nodeName"] = "Edge_1"
		}, []string{"spec.nodeName", "should match"}},
		{"a report period below 100ms", validDevice, func(o map[string]any) {
			props(o)[0].(map[string]any)["reportPeriod"] = "10ms"
		}, []string{"reportPeriod must be at least 100ms"}},
		{"a misspelt field", validDevice, func(o map[string]any) {
			spec(o)["nodename"] = "edge-1"
		}, []string{`unknown field "spec.nodename"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tt.manifest), &obj.Object); err != nil {
				t.Fatal(err)
			}
			obj.SetNamespace(ns)
			tt.edit(obj.Object)
			err := k8s.Create(context.Background(), obj, client.FieldValidation("Strict"))
			if err == nil {
				t.Fatalf("the API server accepted the manifest")
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("error = %v, want Invalid or BadRequest", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err.Error(), w)
				}
			}
			check := &unstructured.Unstructured{}
			check.SetGroupVersionKind(obj.GroupVersionKind())
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), check); !apierrors.IsNotFound(err) {
				t.Errorf("after the refusal, Get = %v, want NotFound", err)
			}
		})
	}
}

// TestSchemaAcceptsValidManifests is the counterpart: the unedited manifests are accepted, and
// the defaults (accessMode ReadOnly) are applied.
func TestSchemaAcceptsValidManifests(t *testing.T) {
	ns := newNamespace(t)
	for _, manifest := range []string{validModel, validDevice} {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
			t.Fatal(err)
		}
		obj.SetNamespace(ns)
		if err := k8s.Create(context.Background(), obj, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("creating %s: %v", obj.GetKind(), err)
		}
	}
	model := &v1alpha1.DeviceModel{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "m"}, model); err != nil {
		t.Fatal(err)
	}
	if got := model.Spec.Properties[0].AccessMode; got != v1alpha1.AccessModeReadOnly {
		t.Errorf("defaulted accessMode = %q, want ReadOnly", got)
	}
}

// TestEdgeNodeNameMustBeADNSLabel: a node's name becomes its certificate's CN and part of MQTT
// topics, so dots (allowed in other cluster-scoped names) are refused.
func TestEdgeNodeNameMustBeADNSLabel(t *testing.T) {
	err := k8s.Create(context.Background(), &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: "site.one"}})
	if err == nil || !strings.Contains(err.Error(), "metadata.name must be a DNS label") {
		t.Fatalf("creating EdgeNode site.one: err = %v, want a DNS label error", err)
	}
}

func spec(o map[string]any) map[string]any { return o["spec"].(map[string]any) }
func props(o map[string]any) []any         { return spec(o)["properties"].([]any) }
