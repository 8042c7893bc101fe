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

// Package pkitest makes edgetwin certificates for tests through cloud/pki itself, so that tests
// of other packages present exactly what a joined node and a running cloudcore would.
package pkitest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/pkg/certapi"
)

// NewCA returns a fresh in-memory CA valid for a day.
func NewCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// NodeCertificate issues a client certificate for a node and EdgeNode UID, valid for validity,
// as a join would: a new key, a CSR, and the CA's signature.
func NodeCertificate(t testing.TB, ca *pki.CA, name, uid string, validity time.Duration) tls.Certificate {
	t.Helper()
	key, csr, err := certapi.NewNodeKey(name)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignNodeCSR(csr, name, uid, validity)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// ServerCertificate issues CloudHub's serving certificate for localhost and 127.0.0.1.
func ServerCertificate(t testing.TB, ca *pki.CA) tls.Certificate {
	t.Helper()
	cert, err := ca.ServerCertificate([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
