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

package join_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// The suite runs against a real kube-apiserver and etcd: single use of a token rests on the API
// server's delete preconditions, which only the real thing can show.
var (
	k8s    client.Client
	testCA *pki.CA
)

func TestMain(m *testing.M) {
	flag.Parse()
	// A fuzzing run (-fuzz, and each of its worker processes) exercises only the request
	// decoder, which needs no API server; starting one per worker would only slow it down.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "join suite:", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	if k8s, err = cp.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "join suite:", err)
		return 1
	}
	if testCA, err = pki.NewCA(24 * time.Hour); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// newNamespace creates a namespace for one test and returns its name, which is also a fresh
// node name: EdgeNodes are cluster-scoped, so tests must not share names.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "join-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), ns)
		_ = k8s.Delete(context.Background(), &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}})
	})
	return ns.Name
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func getEdgeNode(t *testing.T, name string) *v1alpha1.EdgeNode {
	t.Helper()
	var node v1alpha1.EdgeNode
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatalf("reading EdgeNode %s: %v", name, err)
	}
	return &node
}

// tokenSecretExists says whether the Secret of token is still stored.
func tokenSecretExists(t *testing.T, ns, token string) bool {
	t.Helper()
	tok, err := parseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	err = k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secretName(tok.ID)}, &corev1.Secret{})
	if err != nil && client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	return err == nil
}
