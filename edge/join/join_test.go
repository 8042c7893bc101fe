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
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	// Test-only: cloud/pki makes a real CA and real certificates. It does not reach edgecore's
	// binary (cmd/edgecore's TestEdgecoreLinksNoCloudPackage checks).
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/edge/join"
)

const (
	testNode = "edge-7"
	testUID  = "0b7c3c1e-9f5a-4d7e-8a64-1f2e3d4c5b6a"
	// tokenBody is a well-formed <id>.<secret>. to which a test appends a pin.
	tokenBody = "abc234.abcdefghijklmnopqrstuvwxyz."
)

func tokenFor(ca *pki.CA) string {
	return tokenBody + strings.TrimPrefix(ca.Hash(), pki.CAHashPrefix)
}

// server is a join endpoint on loopback that signs with a real CA. answer decides the reply;
// requests counts the join requests that reached it, to show what was never sent.
type server struct {
	*httptest.Server
	ca       *pki.CA
	requests atomic.Int32
}

type answerFunc func(w http.ResponseWriter, csr []byte, ca *pki.CA)

func signFor(node string) answerFunc {
	return func(w http.ResponseWriter, csr []byte, ca *pki.CA) {
		cert, err := ca.SignNodeCSR(csr, node, testUID, time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"certificate": string(cert), "ca": string(ca.CertPEM())})
	}
}

func newServer(t *testing.T, sans []string, chainWithCA bool, answer answerFunc) *server {
	t.Helper()
	ca, err := pki.NewCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ca: ca}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		var req struct{ Token, NodeName, CSR string }
		if r.URL.Path != "/join" || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil ||
			req.Token != tokenFor(ca) || req.NodeName != testNode {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		answer(w, []byte(req.CSR), ca)
	}))
	cert, err := ca.ServerCertificate(sans, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !chainWithCA {
		cert.Certificate = cert.Certificate[:1]
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func TestJoinReturnsAKeyAndACertificateForTheNode(t *testing.T) {
	s := newServer(t, []string{"127.0.0.1"}, true, signFor(testNode))
	res, err := join.Join(context.Background(), s.URL, tokenFor(s.ca), testNode)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	pair, err := tls.X509KeyPair(res.CertificatePEM, res.KeyPEM)
	if err != nil {
		t.Fatalf("the key does not go with the certificate: %v", err)
	}
	name, uid, err := pki.NodeIdentity(pair.Leaf)
	if err != nil || name != testNode || uid != testUID {
		t.Errorf("NodeIdentity = %q, %q, %v; want %q, %q", name, uid, err, testNode, testUID)
	}
	if res.NodeName != testNode || res.NodeUID != testUID {
		t.Errorf("Result names %q/%q, want %q/%q", res.NodeName, res.NodeUID, testNode, testUID)
	}
	if string(res.CAPEM) != string(s.ca.CertPEM()) {
		t.Error("the returned CA is not the server's CA")
	}
	if !res.NotAfter.Equal(pair.Leaf.NotAfter) {
		t.Errorf("NotAfter = %s, want %s", res.NotAfter, pair.Leaf.NotAfter)
	}
	if s.requests.Load() != 1 {
		t.Errorf("the server saw %d requests, want 1", s.requests.Load())
	}
}

func TestJoinWithACAFile(t *testing.T) {
	s := newServer(t, []string{"127.0.0.1"}, false, signFor(testNode))
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, s.ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server does not present its CA, so only the CA file can make this work.
	if _, err := join.Join(context.Background(), s.URL, tokenFor(s.ca), testNode, join.WithCAFile(path)); err != nil {
		t.Fatalf("Join with a CA file: %v", err)
	}
	other, err := pki.NewCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = join.Join(context.Background(), s.URL, tokenFor(s.ca), testNode, join.WithCA(other.CertPEM()))
	if !errors.Is(err, join.ErrCAMismatch) {
		t.Errorf("Join with a CA that is not the pinned one: error = %v, want ErrCAMismatch", err)
	}
	if got := s.requests.Load(); got != 1 {
		t.Errorf("the server saw %d requests, want only the successful one", got)
	}
}

func TestJoinRefusesAServerItCannotTrustBeforeSendingTheToken(t *testing.T) {
	other, err := pki.NewCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		sans        []string
		chainWithCA bool
		token       func(s *server) string
		want        error
	}{
		{name: "a token pinning another CA is refused", sans: []string{"127.0.0.1"}, chainWithCA: true,
			token: func(*server) string { return tokenFor(other) }, want: join.ErrCAMismatch},
		{name: "a server that does not present its CA is refused", sans: []string{"127.0.0.1"},
			token: func(s *server) string { return tokenFor(s.ca) }, want: join.ErrCAMismatch},
		{name: "a server certificate for another address is refused", sans: []string{"10.9.9.9", "cloudcore.example.com"}, chainWithCA: true,
			token: func(s *server) string { return tokenFor(s.ca) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.sans, tt.chainWithCA, signFor(testNode))
			res, err := join.Join(context.Background(), s.URL, tt.token(s), testNode)
			if err == nil {
				t.Fatalf("Join succeeded: %+v", res)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if got := s.requests.Load(); got != 0 {
				t.Errorf("the token reached the server (%d requests)", got)
			}
		})
	}
}

func TestJoinRefusesAnAnswerThatIsNotForIt(t *testing.T) {
	tests := []struct {
		name   string
		answer answerFunc
		want   error
	}{
		{name: "a certificate for another node is refused", answer: signFor("edge-8"), want: join.ErrBadResponse},
		{name: "a certificate for another key is refused", want: join.ErrBadResponse,
			answer: func(w http.ResponseWriter, _ []byte, ca *pki.CA) {
				csr := otherCSR(t)
				signFor(testNode)(w, csr, ca)
			}},
		{name: "an answer carrying another CA is refused", want: join.ErrCAMismatch,
			answer: func(w http.ResponseWriter, csr []byte, ca *pki.CA) {
				other, err := pki.NewCA(time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				cert, err := other.SignNodeCSR(csr, testNode, testUID, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]string{"certificate": string(cert), "ca": string(other.CertPEM())})
			}},
		{name: "an answer that is not JSON is refused", want: join.ErrBadResponse,
			answer: func(w http.ResponseWriter, _ []byte, _ *pki.CA) { _, _ = w.Write([]byte("<html>")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, []string{"127.0.0.1"}, true, tt.answer)
			res, err := join.Join(context.Background(), s.URL, tokenFor(s.ca), testNode)
			if !errors.Is(err, tt.want) {
				t.Errorf("Join = %+v, %v; want error %v", res, err, tt.want)
			}
		})
	}
}

// otherCSR makes a valid CSR for a key the client does not hold.
func otherCSR(t *testing.T) []byte {
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

func TestJoinSurfacesTheServersReason(t *testing.T) {
	s := newServer(t, []string{"127.0.0.1"}, true, func(w http.ResponseWriter, _ []byte, _ *pki.CA) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"reason":"TokenExpired","message":"join token has expired: token abc234 expired at 2026-01-01T00:00:00Z"}`))
	})
	_, err := join.Join(context.Background(), s.URL, tokenFor(s.ca), testNode)
	serverErr, ok := errors.AsType[*join.ServerError](err)
	if !ok {
		t.Fatalf("error = %v, want a *ServerError", err)
	}
	if serverErr.StatusCode != http.StatusForbidden || serverErr.Reason != "TokenExpired" || !strings.Contains(serverErr.Message, "expired") {
		t.Errorf("ServerError = %+v", serverErr)
	}
	if !strings.Contains(err.Error(), "TokenExpired") {
		t.Errorf("the error message %q does not say why", err)
	}
}

func TestJoinRefusesBadArgumentsWithoutDialling(t *testing.T) {
	s := newServer(t, []string{"127.0.0.1"}, true, signFor(testNode))
	good := tokenFor(s.ca)
	tests := []struct {
		name   string
		server string
		token  string
		node   string
		want   error
	}{
		{name: "a token with two parts is refused", server: s.URL, token: "abc234.abcdefghijklmnopqrstuvwxyz", node: testNode, want: join.ErrMalformedToken},
		{name: "a token with upper-case letters is refused", server: s.URL, token: strings.ToUpper(good), node: testNode, want: join.ErrMalformedToken},
		{name: "a token with a short pin is refused", server: s.URL, token: good[:len(good)-2], node: testNode, want: join.ErrMalformedToken},
		{name: "a plain-HTTP server is refused", server: strings.Replace(s.URL, "https://", "http://", 1), token: good, node: testNode},
		{name: "an empty node name is refused", server: s.URL, token: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := join.Join(context.Background(), tt.server, tt.token, tt.node)
			if err == nil {
				t.Fatal("Join succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "abcdefghijklmnopqrstuvwxyz") {
				t.Errorf("the error quotes the token's secret: %v", err)
			}
			if got := s.requests.Load(); got != 0 {
				t.Errorf("the server saw %d requests", got)
			}
		})
	}
}
