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
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
	edgejoin "github.com/edgetwin/edgetwin/edge/join"
)

// newJoinServer serves the real Handler over TLS on loopback, as cloudcore does.
func newJoinServer(t *testing.T, ns string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(join.Path, &join.Handler{Client: k8s, Namespace: ns, CA: testCA, CertificateValidity: 2 * time.Hour})
	srv := httptest.NewUnstartedServer(mux)
	cert, err := testCA.ServerCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestEdgecoreJoinsThroughTheHandler is the whole join: edge/join (what edgecore runs) against
// the Handler, the real API server and the CA pin in a token from Create.
func TestEdgecoreJoinsThroughTheHandler(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	srv := newJoinServer(t, ns)
	token := createToken(t, ns, ns)

	res, err := edgejoin.Join(ctx, srv.URL, token, ns)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	pair, err := tls.X509KeyPair(res.CertificatePEM, res.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	name, uid, err := pki.NodeIdentity(pair.Leaf)
	if err != nil {
		t.Fatalf("NodeIdentity: %v", err)
	}
	if node := getEdgeNode(t, ns); name != ns || uid != string(node.UID) {
		t.Errorf("the certificate names %s/%s, want %s/%s", name, uid, ns, node.UID)
	}
	if got := time.Until(pair.Leaf.NotAfter); got < time.Hour || got > 2*time.Hour {
		t.Errorf("the certificate is valid for %s more, want the configured 2h", got)
	}
	if _, err := pair.Leaf.Verify(pkiClientOpts()); err != nil {
		t.Errorf("the certificate does not verify against the CA: %v", err)
	}

	_, err = edgejoin.Join(ctx, srv.URL, token, ns)
	serverErr, ok := errors.AsType[*edgejoin.ServerError](err)
	if !ok || serverErr.Reason != join.ReasonUnknownToken || serverErr.StatusCode != http.StatusUnauthorized {
		t.Errorf("joining again with the used token: error = %v, want a 401 %s", err, join.ReasonUnknownToken)
	}
}

func TestHandlerRefusals(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	goodCSR := string(newCSR(t))
	body := func(token, node, csr string) string {
		b, err := json.Marshal(join.Request{Token: token, NodeName: node, CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name       string
		method     string
		body       func(token string) string
		now        time.Time
		wantStatus int
		wantReason string
		keepToken  bool
	}{
		{name: "GET is refused", method: http.MethodGet, body: func(string) string { return "" },
			wantStatus: http.StatusMethodNotAllowed, wantReason: join.ReasonMethodNotAllowed, keepToken: true},
		{name: "an empty body is refused", body: func(string) string { return "" },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "garbage is refused", body: func(string) string { return "\x00\xff{{{" },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "a JSON array is refused", body: func(string) string { return "[1,2]" },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "an empty object is refused", body: func(string) string { return "{}" },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "an unknown field is refused", body: func(tok string) string { return strings.Replace(body(tok, ns, goodCSR), "{", `{"admin":true,`, 1) },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "two requests in one body are refused", body: func(tok string) string { return body(tok, ns, goodCSR) + body(tok, ns, goodCSR) },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidRequest, keepToken: true},
		{name: "a body over the limit is refused", body: func(tok string) string {
			return body(tok, ns, goodCSR+strings.Repeat(" ", join.MaxRequestBytes))
		}, wantStatus: http.StatusRequestEntityTooLarge, wantReason: join.ReasonRequestTooLarge, keepToken: true},
		{name: "a CSR that is not PEM is refused without using the token", body: func(tok string) string { return body(tok, ns, "not a csr") },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidCSR, keepToken: true},
		{name: "a node name that is not a DNS label is refused", body: func(tok string) string { return body(tok, "Edge_7", goodCSR) },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonInvalidNodeName, keepToken: true},
		{name: "a malformed token is refused", body: func(tok string) string { return body(tok+"x", ns, goodCSR) },
			wantStatus: http.StatusBadRequest, wantReason: join.ReasonMalformedToken, keepToken: true},
		{name: "a wrong secret is refused", body: func(tok string) string {
			parsed, err := join.ParseToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			parsed.Secret = strings.Repeat("b", 26)
			return body(parsed.String(), ns, goodCSR)
		}, wantStatus: http.StatusUnauthorized, wantReason: join.ReasonWrongSecret, keepToken: true},
		{name: "another node's token is refused", body: func(tok string) string { return body(tok, "not-"+ns, goodCSR) },
			wantStatus: http.StatusForbidden, wantReason: join.ReasonTokenForOtherNode, keepToken: true},
		{name: "an expired token is refused", body: func(tok string) string { return body(tok, ns, goodCSR) }, now: time.Now().Add(2 * time.Hour),
			wantStatus: http.StatusForbidden, wantReason: join.ReasonTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := createToken(t, ns, ns)
			h := &join.Handler{Client: k8s, Namespace: ns, CA: testCA}
			if !tt.now.IsZero() {
				h.Now = func() time.Time { return tt.now }
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequestWithContext(ctx, method, join.Path, strings.NewReader(tt.body(token)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got join.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("the error is not JSON: %v: %q", err, rec.Body)
			}
			if got.Reason != tt.wantReason || got.Message == "" {
				t.Errorf("error body = %+v, want reason %s and a message", got, tt.wantReason)
			}
			if strings.Contains(rec.Body.String(), token) {
				t.Error("the error quotes the token")
			}
			if exists := tokenSecretExists(t, ns, token); exists != tt.keepToken {
				t.Errorf("token Secret exists = %v, want %v", exists, tt.keepToken)
			}
		})
	}
}

func TestHandlerRefusesATokenWhoseEdgeNodeIsGone(t *testing.T) {
	ns := newNamespace(t)
	token := createToken(t, ns, ns)
	if err := k8s.Delete(context.Background(), getEdgeNode(t, ns)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(join.Request{Token: token, NodeName: ns, CSR: string(newCSR(t))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	(&join.Handler{Client: k8s, Namespace: ns, CA: testCA}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, join.Path, bytes.NewReader(b)))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), join.ReasonEdgeNodeMissing) {
		t.Errorf("got %d %s, want 409 %s", rec.Code, rec.Body, join.ReasonEdgeNodeMissing)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"token":"abc234.abcdefghijklmnopqrstuvwxyz.00","nodeName":"edge-1","csr":"-----BEGIN CERTIFICATE REQUEST-----"}`,
		`{"token":1}`, `{}`, `[]`, `null`, `"x"`, `{"token":"a","nodeName":"b","csr":"c"} {}`, "", "\xff",
		`{"token":"a","nodeName":"b","csr":"c","extra":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := join.DecodeRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if req.Token == "" || req.NodeName == "" || req.CSR == "" {
			t.Errorf("DecodeRequest accepted a request with an empty field: %+v", req)
		}
	})
}

func pkiClientOpts() x509.VerifyOptions {
	return x509.VerifyOptions{Roots: testCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
