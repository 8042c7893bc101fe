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

package renew_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayOnTheEdge keeps edgecore small and free of the cloud's dependencies: what
// edge/renew links (tests aside) must not include client-go, apimachinery, controller-runtime or
// cloud/. k8s.io/utils/clock and sigs.k8s.io/yaml (through edge/config) are small and allowed.
func TestImportsStayOnTheEdge(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the imports: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/edgetwin/edgetwin/edge/renew").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed %d packages; the check would prove nothing", len(deps))
	}
	for _, dep := range deps {
		for _, banned := range []string{"k8s.io/client-go", "k8s.io/apimachinery", "k8s.io/api/", "sigs.k8s.io/controller-runtime",
			"github.com/edgetwin/edgetwin/cloud/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("edge/renew depends on %s", dep)
			}
		}
	}
}
