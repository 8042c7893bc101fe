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

package crd

import "testing"

func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range crds {
		got[c.Name] = true
		if c.Spec.Group != "edgetwin.dev" || len(c.Spec.Versions) != 1 || c.Spec.Versions[0].Name != "v1alpha1" {
			t.Errorf("%s: group %q versions %d, want edgetwin.dev v1alpha1", c.Name, c.Spec.Group, len(c.Spec.Versions))
		}
	}
	for _, want := range []string{"devices.edgetwin.dev", "devicemodels.edgetwin.dev", "edgenodes.edgetwin.dev"} {
		if !got[want] {
			t.Errorf("CRD %s is not embedded; have %v", want, got)
		}
	}
}
