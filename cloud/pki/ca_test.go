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

package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestNewCAMakesAnECDSACertificateAuthority(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.Certificate()
	if !cert.IsCA || !cert.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", cert.IsCA, cert.BasicConstraintsValid)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("the CA cannot sign certificates")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err != nil {
		t.Errorf("the CA does not verify against its own pool: %v", err)
	}
	block, _ := pem.Decode(ca.CertPEM())
	if block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
		t.Error("CertPEM does not hold the CA certificate")
	}
}

func TestCAHashPinsTheSubjectPublicKeyInfo(t *testing.T) {
	ca := newTestCA(t)
	sum := sha256.Sum256(ca.Certificate().RawSubjectPublicKeyInfo)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := CAHash(ca.Certificate().Raw); got != want {
		t.Errorf("CAHash = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(ca.Hash()) {
		t.Errorf("Hash() = %q, not sha256:<64 hex>", ca.Hash())
	}
	if other := newTestCA(t); other.Hash() == ca.Hash() {
		t.Error("two CAs have the same pin")
	}
	if got := CAHash([]byte("not a certificate")); got != "" {
		t.Errorf("CAHash(garbage) = %q, want empty", got)
	}
}

func TestLoadCA(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	leaf, err := ca.ServerCertificate([]string{"example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    []byte
		key     []byte
		wantErr bool
	}{
		{name: "a CA and its PKCS#8 key load", cert: ca.certPEM, key: ca.keyPEM},
		{name: "a CA and its SEC 1 key load", cert: ca.certPEM, key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecKey})},
		{name: "a key of another CA is refused", cert: ca.certPEM, key: other.keyPEM, wantErr: true},
		{name: "a leaf certificate is refused", cert: leafPEM,
			key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER}), wantErr: true},
		{name: "an RSA key is refused", cert: ca.certPEM, key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), wantErr: true},
		{name: "garbage is refused", cert: []byte("garbage"), key: []byte("garbage"), wantErr: true},
		{name: "an empty key is refused", cert: ca.certPEM, wantErr: true},
		{name: "two certificates are refused", cert: append(bytes.Clone(ca.certPEM), other.certPEM...), key: ca.keyPEM, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadCA(tt.cert, tt.key)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidCA) {
					t.Fatalf("LoadCA error = %v, want ErrInvalidCA", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadCA: %v", err)
			}
			if got.Hash() != ca.Hash() {
				t.Error("the loaded CA has another pin")
			}
		})
	}
}

func TestEnsureCACreatesTheSecretOnceAndThenLoadsIt(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	first, err := EnsureCA(ctx, k8s, ns, DefaultCASecretName)
	if err != nil {
		t.Fatalf("EnsureCA: %v", err)
	}
	var secret corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultCASecretName}, &secret); err != nil {
		t.Fatalf("the CA Secret was not created: %v", err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type = %q, want %q", secret.Type, corev1.SecretTypeTLS)
	}
	if !bytes.Equal(secret.Data[corev1.TLSCertKey], first.CertPEM()) {
		t.Error("tls.crt does not hold the CA certificate EnsureCA returned")
	}
	second, err := EnsureCA(ctx, k8s, ns, DefaultCASecretName)
	if err != nil {
		t.Fatalf("EnsureCA again: %v", err)
	}
	if second.Hash() != first.Hash() {
		t.Error("a second EnsureCA made a new CA instead of loading the stored one")
	}
}

func TestEnsureCAConcurrentCallersEndWithOneCA(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		ns := newNamespace(t)
		const callers = 6
		hashes := make([]string, callers)
		errs := make([]error, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				ca, err := EnsureCA(ctx, k8s, ns, "ca")
				errs[i] = err
				if err == nil {
					hashes[i] = ca.Hash()
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("round %d: caller %d: %v", round, i, errs[i])
			}
			if hashes[i] != hashes[0] {
				t.Fatalf("round %d: callers got different CAs: %q and %q", round, hashes[0], hashes[i])
			}
		}
		stored, err := EnsureCA(ctx, k8s, ns, "ca")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Hash() != hashes[0] {
			t.Fatalf("round %d: the callers hold a CA that is not the stored one", round)
		}
	}
}

func TestEnsureCARefusesABrokenSecretAndLeavesItAlone(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t)
	tests := []struct {
		name   string
		secret corev1.Secret
	}{
		{name: "a certificate that is not PEM", secret: corev1.Secret{
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: []byte("garbage"), corev1.TLSPrivateKeyKey: ca.keyPEM},
		}},
		{name: "a key of another CA", secret: corev1.Secret{
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: ca.certPEM, corev1.TLSPrivateKeyKey: newTestCA(t).keyPEM},
		}},
		{name: "a Secret of another type", secret: corev1.Secret{
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{corev1.TLSCertKey: ca.certPEM, corev1.TLSPrivateKeyKey: ca.keyPEM},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			secret := tt.secret.DeepCopy()
			secret.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "ca"}
			if err := k8s.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
			if _, err := EnsureCA(ctx, k8s, ns, "ca"); !errors.Is(err, ErrInvalidCA) {
				t.Fatalf("EnsureCA error = %v, want ErrInvalidCA", err)
			}
			var after corev1.Secret
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(secret), &after); err != nil {
				t.Fatal(err)
			}
			if after.ResourceVersion != secret.ResourceVersion {
				t.Error("EnsureCA modified the broken Secret")
			}
		})
	}
}
