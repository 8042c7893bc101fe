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
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/hub/hubtest"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/cloud/pki/pkitest"
	"github.com/edgetwin/edgetwin/cloud/renew"
)

const (
	nodeName = "edge-1"
	nodeUID  = "6f1c2a9e-1b7d-4c55-9e0a-3d2f8b7a6c41"
)

// server is the Handler behind a TLS listener on loopback configured as cloud/server's.
type server struct {
	*httptest.Server
	ca    *pki.CA
	nodes *hubtest.Nodes
}

func newServer(t *testing.T, validity time.Duration) *server {
	t.Helper()
	ca := newCA(t)
	s := &server{ca: ca, nodes: authorizer(nodeName, nodeUID)}
	mux := http.NewServeMux()
	mux.Handle(renew.Path, &renew.Handler{CA: ca, Authorizer: s.nodes, CertificateValidity: validity})
	s.Server = httptest.NewUnstartedServer(mux)
	serving, err := ca.ServerCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func newCA(t *testing.T) *pki.CA { return pkitest.NewCA(t) }

// authorizer knows one node.
func authorizer(name, uid string) *hubtest.Nodes {
	n := hubtest.NewNodes()
	n.Set(name, uid)
	return n
}

// csr returns a new key and a PEM CSR for it that asks for the subject given.
func csr(t *testing.T, commonName string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName, Organization: []string{pki.NodeOrganization}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// nodeCertificate issues a certificate for edge-1 from ca, as a join would.
func nodeCertificate(t *testing.T, ca *pki.CA) tls.Certificate {
	return pkitest.NodeCertificate(t, ca, nodeName, nodeUID, time.Hour)
}

// post sends body to the renewal endpoint, presenting the client certificates given.
func (s *server) post(t *testing.T, body string, certs ...tls.Certificate) (*http.Response, []byte, error) {
	t.Helper()
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+renew.Path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, raw.Bytes(), nil
}

func requestBody(t *testing.T, csrPEM string) string {
	t.Helper()
	b, err := json.Marshal(renew.Request{CSR: csrPEM})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenewalKeepsTheNodeAndItsUID(t *testing.T) {
	s := newServer(t, 2*time.Hour)
	current := nodeCertificate(t, s.ca)
	// The CSR asks to be another node; the answer must name the caller all the same.
	key, req := csr(t, "edge-2")

	resp, raw, err := s.post(t, requestBody(t, req), current)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var answer renew.Response
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatal(err)
	}
	if answer.CA != string(s.ca.CertPEM()) {
		t.Error("the answer does not carry the CA")
	}
	block, _ := pem.Decode([]byte(answer.Certificate))
	if block == nil {
		t.Fatalf("the certificate is not PEM: %q", answer.Certificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	name, uid, err := pki.NodeIdentity(cert)
	if err != nil || name != nodeName || uid != nodeUID {
		t.Errorf("the new certificate names %q/%q (%v), want %s/%s", name, uid, err, nodeName, nodeUID)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("the new certificate is not for the key in the CSR")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the new certificate does not verify as a client certificate: %v", err)
	}
	if left := time.Until(cert.NotAfter); left < 2*time.Hour-time.Minute || left > 2*time.Hour {
		t.Errorf("the new certificate is valid for %s more, want the configured 2h", left)
	}
	if !cert.NotAfter.After(current.Leaf.NotAfter) {
		t.Errorf("the new certificate expires at %s, not after the current one (%s)", cert.NotAfter, current.Leaf.NotAfter)
	}
}

func TestRenewalRefusals(t *testing.T) {
	s := newServer(t, time.Hour)
	_, goodCSR := csr(t, nodeName)
	current := nodeCertificate(t, s.ca)
	tests := []struct {
		name       string
		node       func()
		body       string
		noCert     bool
		wantStatus int
		wantReason string
	}{
		{name: "a caller without a client certificate is unauthorized", body: requestBody(t, goodCSR), noCert: true,
			wantStatus: http.StatusUnauthorized, wantReason: renew.ReasonNoCertificate},
		{name: "a node whose EdgeNode was deleted is forbidden", node: func() { s.nodes.Set(nodeName, "") },
			body: requestBody(t, goodCSR), wantStatus: http.StatusForbidden, wantReason: renew.ReasonNodeRefused},
		{name: "a node whose EdgeNode was re-created is forbidden",
			node: func() { s.nodes.Set(nodeName, "0d3c1e2f-5a6b-4c7d-8e9f-a0b1c2d3e4f5") },
			body: requestBody(t, goodCSR), wantStatus: http.StatusForbidden, wantReason: renew.ReasonNodeRefused},
		{name: "a body that is not JSON is a bad request", body: "\x00garbage{",
			wantStatus: http.StatusBadRequest, wantReason: renew.ReasonInvalidRequest},
		{name: "a request with unknown fields is a bad request", body: `{"csr":"x","nodeName":"edge-2"}`,
			wantStatus: http.StatusBadRequest, wantReason: renew.ReasonInvalidRequest},
		{name: "a request without a csr is a bad request", body: `{}`,
			wantStatus: http.StatusBadRequest, wantReason: renew.ReasonInvalidRequest},
		{name: "a csr that is not PEM is a bad request", body: requestBody(t, "not a csr"),
			wantStatus: http.StatusBadRequest, wantReason: renew.ReasonInvalidCSR},
		{name: "a body larger than the limit is refused", body: requestBody(t, strings.Repeat("a", renew.MaxRequestBytes)),
			wantStatus: http.StatusRequestEntityTooLarge, wantReason: renew.ReasonRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.nodes.Set(nodeName, nodeUID)
			if tt.node != nil {
				tt.node()
			}
			var certs []tls.Certificate
			if !tt.noCert {
				certs = append(certs, current)
			}
			resp, raw, err := s.post(t, tt.body, certs...)
			if err != nil {
				t.Fatal(err)
			}
			var got renew.ErrorResponse
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("the refusal is not JSON: %v: %q", err, raw)
			}
			if resp.StatusCode != tt.wantStatus || got.Reason != tt.wantReason || got.Message == "" {
				t.Errorf("got %d %+v, want %d with reason %s and a message", resp.StatusCode, got, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// A certificate from another CA never reaches the handler: the handshake refuses it.
func TestACertificateFromAnotherCAFailsTheHandshake(t *testing.T) {
	s := newServer(t, time.Hour)
	_, req := csr(t, nodeName)
	foreign := nodeCertificate(t, newCA(t))
	if resp, raw, err := s.post(t, requestBody(t, req), foreign); err == nil {
		t.Fatalf("a certificate from another CA got an answer: %d %s", resp.StatusCode, raw)
	}
}

// Served without TLS, or without verified chains, the handler refuses rather than trusting
// anything else about the caller.
func TestTheHandlerRefusesARequestWithoutVerifiedTLS(t *testing.T) {
	ca := newCA(t)
	_, req := csr(t, nodeName)
	h := &renew.Handler{CA: ca, Authorizer: authorizer(nodeName, nodeUID)}
	current := nodeCertificate(t, ca)
	for name, state := range map[string]*tls.ConnectionState{
		"plain HTTP":                       nil,
		"a certificate TLS did not verify": {PeerCertificates: []*x509.Certificate{current.Leaf}},
		"a chain verified against another CA": {VerifiedChains: [][]*x509.Certificate{
			{nodeCertificate(t, newCA(t)).Leaf}}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, renew.Path, strings.NewReader(requestBody(t, req)))
			r.TLS = state
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401: %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestOnlyPOSTIsAllowed(t *testing.T) {
	rec := httptest.NewRecorder()
	(&renew.Handler{CA: newCA(t), Authorizer: hubtest.NewNodes()}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, renew.Path, nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
		t.Errorf("GET: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"csr":"-----BEGIN CERTIFICATE REQUEST-----"}`,
		`{"csr":1}`, `{}`, `[]`, `null`, `"x"`, `{"csr":"a"} {}`, "", "\xff", `{"csr":"a","nodeName":"b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := renew.DecodeRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if req.CSR == "" {
			t.Errorf("DecodeRequest accepted a request without a csr: %+v", req)
		}
		// What passes the decoder goes to the CSR parser next; it must not panic either.
		_, _ = pki.ParseNodeCSR([]byte(req.CSR))
	})
}
