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
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// TestTokenCreateAgainstARealAPIServer runs the command as a user would, with a kubeconfig, and
// checks that the printed token is accepted by the join service. The token logic itself is
// tested in cloud/join; this covers the wiring (kubeconfig, scheme, CA, namespace).
func TestTokenCreateAgainstARealAPIServer(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: defaultNamespace}}); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"token", "create", "edge-7", "--kubeconfig", kubeconfig, "--ttl", "10m"}, &stdout, &stderr, createToken)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr: %s", code, &stderr)
	}
	token, _, _ := strings.Cut(stdout.String(), "\n")
	node, err := join.Consume(ctx, c, defaultNamespace, token, "edge-7", time.Now())
	if err != nil {
		t.Fatalf("the printed token is not accepted: %v", err)
	}
	if node.Name != "edge-7" {
		t.Errorf("the token joined EdgeNode %s", node.Name)
	}
	var ca corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: defaultNamespace, Name: "edgetwin-ca"}, &ca); err != nil {
		t.Errorf("the CA Secret was not created: %v", err)
	}
}
