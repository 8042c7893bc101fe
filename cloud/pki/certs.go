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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// NodeOrganization is the subject organization of every edge node certificate, so that a
	// node certificate is never mistaken for any other certificate the CA might sign.
	NodeOrganization = "edgetwin:nodes"

	// NodeURIPrefix starts the URI SAN that carries the EdgeNode's UID. The UID ties the
	// certificate to one incarnation of the EdgeNode: a node deleted and re-created under the
	// same name has a new UID, and the old certificate no longer matches it.
	NodeURIPrefix = "urn:edgetwin:edgenode:"

	// serverCommonName is the subject CN of CloudHub's serving certificate; clients check the
	// SANs, never the CN.
	serverCommonName = "edgetwin-cloudcore"
)

var (
	// ErrInvalidCSR is returned for a certificate signing request that cannot be signed: not
	// PEM, not parseable, or with a bad signature.
	ErrInvalidCSR = errors.New("invalid certificate signing request")
	// ErrUnsupportedKey is returned for a CSR whose key is not ECDSA P-256 or P-384.
	ErrUnsupportedKey = errors.New("unsupported key: edge node keys must be ECDSA P-256 or P-384")
	// ErrNotNodeCertificate is returned by NodeIdentity for a certificate that is not an edge
	// node's client certificate.
	ErrNotNodeCertificate = errors.New("not an edgetwin node certificate")
)

// ServerCertificate issues a serving certificate for CloudHub and the join endpoint, with a
// fresh ECDSA P-256 key, valid for validity. Each SAN is an IP address when it parses as one and
// a DNS name (wildcards allowed) otherwise; they are cloudcore's --advertise-address values. The
// SANs are exactly those given: nothing (not even localhost) is added, so the certificate claims
// no name its operator did not choose.
//
// The returned chain holds the leaf and then the CA certificate: 'edgecore join' trusts the CA
// by its pin before it has the CA, so the server must present the CA in the handshake.
func (ca *CA) ServerCertificate(sans []string, validity time.Duration) (tls.Certificate, error) {
	if validity <= 0 {
		return tls.Certificate{}, fmt.Errorf("server certificate validity must be positive, got %s", validity)
	}
	if len(sans) == 0 {
		return tls.Certificate{}, errors.New("a server certificate needs at least one address or DNS name")
	}
	var ips []net.IP
	var dnsNames []string
	for _, san := range sans {
		if ip := net.ParseIP(san); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		name := strings.ToLower(san)
		errs := validation.IsDNS1123Subdomain(name)
		if strings.HasPrefix(name, "*.") {
			errs = validation.IsWildcardDNS1123Subdomain(name)
		}
		if len(errs) > 0 {
			return tls.Certificate{}, fmt.Errorf("server certificate SAN %q is neither an IP address nor a DNS name: %s",
				san, strings.Join(errs, "; "))
		}
		if !slices.Contains(dnsNames, name) {
			dnsNames = append(dnsNames, name)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating the server key: %w", err)
	}
	now := time.Now()
	cert, err := ca.sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: serverCommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}, key.Public())
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{
		Certificate: [][]byte{cert.Raw, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        cert,
	}, nil
}

// ParseNodeCSR decodes and checks a PEM certificate signing request from an edge node: its
// signature must verify and its key must be ECDSA P-256 or P-384. The join service calls it
// before it consumes a token, so that a bad CSR does not burn the token.
func ParseNodeCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != csrPEMType {
		return nil, fmt.Errorf("%w: not a PEM %q block", ErrInvalidCSR, csrPEMType)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: got %s", ErrUnsupportedKey, csr.PublicKeyAlgorithm)
	}
	if curve := pub.Curve; curve != elliptic.P256() && curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: got curve %s", ErrUnsupportedKey, curve.Params().Name)
	}
	// Proof of possession: the requester holds the private key of the key it asks us to certify.
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrInvalidCSR, err)
	}
	return csr, nil
}

// SignNodeCSR issues an edge node's client certificate, valid for validity, for the key in
// csrPEM. Everything the CSR asks for besides its key (subject, SANs, extensions) is ignored:
// the certificate names nodeName (CN), NodeOrganization (O) and the EdgeNode's UID (URI SAN
// NodeURIPrefix+nodeUID), allows client authentication only, and is not a CA.
func (ca *CA) SignNodeCSR(csrPEM []byte, nodeName, nodeUID string, validity time.Duration) ([]byte, error) {
	if errs := validation.IsDNS1123Label(nodeName); len(errs) > 0 {
		return nil, fmt.Errorf("node name %q is not a DNS label: %s", nodeName, strings.Join(errs, "; "))
	}
	uid, err := nodeURI(nodeUID)
	if err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("node certificate validity must be positive, got %s", validity)
	}
	csr, err := ParseNodeCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	cert, err := ca.sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: nodeName, Organization: []string{NodeOrganization}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uid},
	}, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: cert.Raw}), nil
}

// nodeURI returns the URI SAN for an EdgeNode UID. The UID is an opaque string to us, but it
// must fit in a URN without escaping, which Kubernetes UIDs (RFC 4122) do.
func nodeURI(nodeUID string) (*url.URL, error) {
	if nodeUID == "" || strings.ContainsFunc(nodeUID, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-'
	}) {
		return nil, fmt.Errorf("node UID %q is empty or has characters other than letters, digits and '-'", nodeUID)
	}
	u, err := url.Parse(NodeURIPrefix + nodeUID)
	if err != nil {
		return nil, fmt.Errorf("node UID %q does not make a URI: %w", nodeUID, err)
	}
	return u, nil
}

// NodeIdentity reads the node name and EdgeNode UID from an edge node's client certificate, as
// SignNodeCSR wrote them. It checks the certificate's shape, not its signature: verify the
// certificate against Pool first (a TLS server with ClientCAs does). Any other certificate (a
// CA, a serving certificate, one without the organization or with no or several URIs) is an
// error wrapping ErrNotNodeCertificate.
func NodeIdentity(cert *x509.Certificate) (nodeName, nodeUID string, err error) {
	if cert == nil {
		return "", "", fmt.Errorf("%w: no certificate", ErrNotNodeCertificate)
	}
	if cert.IsCA {
		return "", "", fmt.Errorf("%w: it is a CA certificate", ErrNotNodeCertificate)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", "", fmt.Errorf("%w: it does not allow client authentication", ErrNotNodeCertificate)
	}
	if !slices.Equal(cert.Subject.Organization, []string{NodeOrganization}) {
		return "", "", fmt.Errorf("%w: subject organization is %q, want [%q]", ErrNotNodeCertificate, cert.Subject.Organization, NodeOrganization)
	}
	nodeName = cert.Subject.CommonName
	if errs := validation.IsDNS1123Label(nodeName); len(errs) > 0 {
		return "", "", fmt.Errorf("%w: common name %q is not a node name: %s", ErrNotNodeCertificate, nodeName, strings.Join(errs, "; "))
	}
	if len(cert.URIs) != 1 {
		return "", "", fmt.Errorf("%w: it has %d URI SANs, want exactly one", ErrNotNodeCertificate, len(cert.URIs))
	}
	uri := cert.URIs[0].String()
	nodeUID, ok := strings.CutPrefix(uri, NodeURIPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: URI SAN %q does not start with %q", ErrNotNodeCertificate, uri, NodeURIPrefix)
	}
	if _, err := nodeURI(nodeUID); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrNotNodeCertificate, err)
	}
	return nodeName, nodeUID, nil
}
