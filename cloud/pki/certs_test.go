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
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"
)

const (
	testNode = "edge-7"
	testUID  = "6f1c2a4e-3b1d-4c55-9a8e-0d3c2b1a0f99"
)

func newKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newCSR(t *testing.T, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: testNode}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parseCertPEM(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestSignNodeCSRIssuesTheNodesIdentityWhateverTheCSRAsks(t *testing.T) {
	ca := newTestCA(t)
	evil, _ := url.Parse(NodeURIPrefix + "someone-else")
	tests := []struct {
		name string
		key  *ecdsa.PrivateKey
		csr  *x509.CertificateRequest
	}{
		{name: "a plain P-256 CSR gets the node's certificate", key: newKey(t, elliptic.P256())},
		{name: "a P-384 key is accepted", key: newKey(t, elliptic.P384())},
		{name: "a CSR with a forged subject and SANs still names the node it joined as", key: newKey(t, elliptic.P256()),
			csr: &x509.CertificateRequest{
				Subject:        pkix.Name{CommonName: "admin", Organization: []string{"system:masters", NodeOrganization}},
				DNSNames:       []string{"cloudcore.example.com"},
				IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
				URIs:           []*url.URL{evil},
				EmailAddresses: []string{"root@example.com"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, err := ca.SignNodeCSR(newCSR(t, tt.key, tt.csr), testNode, testUID, time.Hour)
			if err != nil {
				t.Fatalf("SignNodeCSR: %v", err)
			}
			cert := parseCertPEM(t, certPEM)
			if cert.Subject.CommonName != testNode {
				t.Errorf("CN = %q, want %q", cert.Subject.CommonName, testNode)
			}
			if !slices.Equal(cert.Subject.Organization, []string{NodeOrganization}) {
				t.Errorf("O = %q, want [%q]", cert.Subject.Organization, NodeOrganization)
			}
			if len(cert.URIs) != 1 || cert.URIs[0].String() != NodeURIPrefix+testUID {
				t.Errorf("URIs = %v, want [%s%s]", cert.URIs, NodeURIPrefix, testUID)
			}
			if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses) != 0 {
				t.Errorf("the certificate carries SANs the CSR asked for: %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v, want ClientAuth only", cert.ExtKeyUsage)
			}
			if cert.IsCA {
				t.Error("the node certificate is a CA")
			}
			if !tt.key.PublicKey.Equal(cert.PublicKey) {
				t.Error("the certificate is not for the CSR's key")
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("the certificate does not verify as a client certificate: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("the node certificate verifies as a server certificate")
			}
			name, uid, err := NodeIdentity(cert)
			if err != nil || name != testNode || uid != testUID {
				t.Errorf("NodeIdentity = %q, %q, %v; want %q, %q", name, uid, err, testNode, testUID)
			}
		})
	}
}

func TestSignNodeCSRRefusals(t *testing.T) {
	ca := newTestCA(t)
	good := newCSR(t, newKey(t, elliptic.P256()), nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tampered := func() []byte {
		block, _ := pem.Decode(newCSR(t, newKey(t, elliptic.P256()), nil))
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		// Flip a bit of the signature, which sits at the end of the DER.
		der := slices.Clone(block.Bytes)
		der[len(der)-1-len(csr.Signature)/2] ^= 0x01
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}()
	tests := []struct {
		name     string
		csr      []byte
		node     string
		uid      string
		validity time.Duration
		want     error
	}{
		{name: "a CSR with an RSA key is refused", csr: newCSR(t, rsaKey, nil), want: ErrUnsupportedKey},
		{name: "a CSR with an Ed25519 key is refused", csr: newCSR(t, edKey, nil), want: ErrUnsupportedKey},
		{name: "a CSR with a P-521 key is refused", csr: newCSR(t, newKey(t, elliptic.P521()), nil), want: ErrUnsupportedKey},
		{name: "a CSR whose signature does not verify is refused", csr: tampered, want: ErrInvalidCSR},
		{name: "a body that is not PEM is refused", csr: []byte("hello"), want: ErrInvalidCSR},
		{name: "a PEM block of another type is refused", csr: ca.CertPEM(), want: ErrInvalidCSR},
		{name: "PEM holding garbage is refused", csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}),
			want: ErrInvalidCSR},
		{name: "a node name that is not a DNS label is refused", csr: good, node: "Edge_7"},
		{name: "an empty node UID is refused", csr: good, uid: "-"},
		{name: "a node UID that would change the URI is refused", csr: good, uid: "x/../y"},
		{name: "a zero validity is refused", csr: good, validity: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, uid, validity := testNode, testUID, time.Hour
			if tt.node != "" {
				node = tt.node
			}
			if tt.uid == "-" {
				uid = ""
			} else if tt.uid != "" {
				uid = tt.uid
			}
			if tt.validity < 0 {
				validity = 0
			}
			certPEM, err := ca.SignNodeCSR(tt.csr, node, uid, validity)
			if err == nil {
				t.Fatalf("SignNodeCSR issued a certificate: %s", certPEM)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignNodeCSRNeverOutlivesTheCA(t *testing.T) {
	ca := newTestCA(t) // valid for an hour
	certPEM, err := ca.SignNodeCSR(newCSR(t, newKey(t, elliptic.P256()), nil), testNode, testUID, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert := parseCertPEM(t, certPEM); cert.NotAfter.After(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter %s is after the CA's %s", cert.NotAfter, ca.Certificate().NotAfter)
	}
}

func TestACertificateOfAnotherCADoesNotVerifyAgainstPool(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	certPEM, err := other.SignNodeCSR(newCSR(t, newKey(t, elliptic.P256()), nil), testNode, testUID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCertPEM(t, certPEM)
	_, err = cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
		t.Errorf("Verify error = %v, want UnknownAuthorityError", err)
	}
}

func TestNodeIdentityRejectsWhatIsNotANodeCertificate(t *testing.T) {
	ca := newTestCA(t)
	key := newKey(t, elliptic.P256())
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	nodeURIs := []*url.URL{uri(NodeURIPrefix + testUID)}
	nodeSubject := pkix.Name{CommonName: testNode, Organization: []string{NodeOrganization}}
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	issue := func(tmpl *x509.Certificate) *x509.Certificate {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
		tmpl.BasicConstraintsValid = true
		cert, err := ca.sign(tmpl, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{name: "a certificate shaped like SignNodeCSR's is read back", ok: true,
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth, URIs: nodeURIs})},
		{name: "a certificate without the URI SAN is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth})},
		{name: "a certificate with two URI SANs is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth,
				URIs: []*url.URL{uri(NodeURIPrefix + testUID), uri(NodeURIPrefix + "other")}})},
		{name: "a certificate whose URI is not an EdgeNode URN is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth, URIs: []*url.URL{uri("https://example.com/" + testUID)}})},
		{name: "a certificate whose URI has an empty UID is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth, URIs: []*url.URL{uri(NodeURIPrefix)}})},
		{name: "a certificate without the nodes organization is rejected",
			cert: issue(&x509.Certificate{Subject: pkix.Name{CommonName: testNode}, ExtKeyUsage: clientAuth, URIs: nodeURIs})},
		{name: "a certificate with an extra organization is rejected",
			cert: issue(&x509.Certificate{Subject: pkix.Name{CommonName: testNode, Organization: []string{NodeOrganization, "system:masters"}},
				ExtKeyUsage: clientAuth, URIs: nodeURIs})},
		{name: "a certificate whose CN is not a node name is rejected",
			cert: issue(&x509.Certificate{Subject: pkix.Name{CommonName: "Edge 7", Organization: []string{NodeOrganization}},
				ExtKeyUsage: clientAuth, URIs: nodeURIs})},
		{name: "a serving-only certificate is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, URIs: nodeURIs})},
		{name: "a certificate without extended key usage is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, URIs: nodeURIs})},
		{name: "a CA certificate is rejected",
			cert: issue(&x509.Certificate{Subject: nodeSubject, ExtKeyUsage: clientAuth, URIs: nodeURIs, IsCA: true})},
		{name: "the edgetwin CA itself is rejected", cert: ca.Certificate()},
		{name: "no certificate is rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, uid, err := NodeIdentity(tt.cert)
			if tt.ok {
				if err != nil || name != testNode || uid != testUID {
					t.Errorf("NodeIdentity = %q, %q, %v; want %q, %q", name, uid, err, testNode, testUID)
				}
				return
			}
			if !errors.Is(err, ErrNotNodeCertificate) {
				t.Errorf("NodeIdentity = %q, %q, %v; want ErrNotNodeCertificate", name, uid, err)
			}
		})
	}
}

func TestServerCertificate(t *testing.T) {
	ca := newTestCA(t)
	tlsCert, err := ca.ServerCertificate([]string{"10.1.2.3", "cloudcore.Example.com", "fd00::1", "10.1.2.3", "*.edge.example.com"}, time.Hour)
	if err != nil {
		t.Fatalf("ServerCertificate: %v", err)
	}
	if len(tlsCert.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want the leaf and the CA", len(tlsCert.Certificate))
	}
	if CAHash(tlsCert.Certificate[1]) != ca.Hash() {
		t.Error("the second certificate of the chain is not the CA")
	}
	leaf := tlsCert.Leaf
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(tlsCert.PrivateKey.(*ecdsa.PrivateKey).Public()) {
		t.Error("the private key does not match the leaf")
	}
	if got := len(leaf.IPAddresses); got != 2 {
		t.Errorf("IPAddresses = %v, want 10.1.2.3 and fd00::1 once each", leaf.IPAddresses)
	}
	if !slices.Equal(leaf.DNSNames, []string{"cloudcore.example.com", "*.edge.example.com"}) {
		t.Errorf("DNSNames = %v", leaf.DNSNames)
	}
	for _, host := range []string{"10.1.2.3", "fd00::1", "cloudcore.example.com", "hub.edge.example.com"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("the certificate does not verify for %s: %v", host, err)
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", "evil.example.com"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err == nil {
			t.Errorf("the certificate verifies for %s, which was not asked for", host)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the serving certificate verifies as a client certificate")
	}
	if _, _, err := NodeIdentity(leaf); err == nil {
		t.Error("NodeIdentity accepted the serving certificate")
	}
}

func TestServerCertificateRefusals(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name     string
		sans     []string
		validity time.Duration
	}{
		{name: "no SAN is refused", validity: time.Hour},
		{name: "an address with a port is refused", sans: []string{"10.0.0.1:10000"}, validity: time.Hour},
		{name: "a URL is refused", sans: []string{"https://cloudcore"}, validity: time.Hour},
		{name: "an empty string is refused", sans: []string{""}, validity: time.Hour},
		{name: "a zero validity is refused", sans: []string{"10.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ca.ServerCertificate(tt.sans, tt.validity); err == nil {
				t.Error("ServerCertificate issued a certificate")
			}
		})
	}
}
