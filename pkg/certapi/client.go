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

package certapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	certificatePEMType = "CERTIFICATE"
	// maxResponseBytes bounds what a client reads from the server: a certificate and a CA fit
	// in a few KiB.
	maxResponseBytes = 1 << 20
)

// ServerError is a call the server refused, with its reason (for example "TokenExpired" for a
// join, "NodeRefused" for a renewal) and message.
type ServerError struct {
	// Operation names the call that was refused, "join" or "renewal", for the message.
	Operation string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Reason is the server's machine-readable reason; empty when the answer had none.
	Reason string
	// Message is the server's explanation.
	Message string
}

func (e *ServerError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s refused by the server (HTTP %d): %s", e.Operation, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s refused by the server (HTTP %d, %s): %s", e.Operation, e.StatusCode, e.Reason, e.Message)
}

// Call is one of the API's calls as the edge makes it. Its fields word the errors, so that each
// edge package keeps its own messages and sentinel while the code is shared.
type Call struct {
	// Name is the call's noun, "join" or "renewal": "the join request", "join refused by the
	// server".
	Name string
	// Doing is its verb, "joining" or "renewing": "joining through https://…".
	Doing string
	// ErrBadResponse wraps every error about an answer that is not what was asked for.
	ErrBadResponse error
}

// NewNodeKey generates a node's new ECDSA P-256 key and a PEM certificate signing request for
// it. The server ignores the request's subject and writes its own; this one is for people
// reading the request.
func NewNodeKey(nodeName string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the node key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeName, Organization: []string{NodeOrganization}},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate signing request: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), nil
}

// KeyPEM encodes a node key as PEM PKCS#8, as the node stores it.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the node key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Post sends request as JSON to endpoint over a connection of its own, checked by tlsConfig,
// and returns the server's Response. timeout bounds the whole exchange. A refusal is a
// *ServerError; an answer that is too large or not JSON wraps c.ErrBadResponse. Whether the
// answer is any good is for CheckCertificate and the caller to say.
func (c Call) Post(ctx context.Context, endpoint *url.URL, tlsConfig *tls.Config, timeout time.Duration, request any) (*Response, error) {
	body, err := json.Marshal(request)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s request: %w", c.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Calls are rare (one join, a renewal every few weeks): no connection is worth keeping.
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: timeout,
		DisableKeepAlives:   true,
	}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the %s request: %w", c.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s through %s: %w", c.Doing, endpoint.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the %s response: %w", c.Name, err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", c.ErrBadResponse, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.serverError(resp.StatusCode, raw)
	}
	var answer Response
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("%w: %w", c.ErrBadResponse, err)
	}
	return &answer, nil
}

// serverError reads the server's JSON refusal, or keeps a short excerpt of whatever it sent (a
// proxy's HTML page, say).
func (c Call) serverError(status int, raw []byte) error {
	var body ErrorResponse
	if err := json.Unmarshal(raw, &body); err != nil || (body.Reason == "" && body.Message == "") {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &ServerError{Operation: c.Name, StatusCode: status, Message: msg}
	}
	return &ServerError{Operation: c.Name, StatusCode: status, Reason: body.Reason, Message: body.Message}
}

// CheckCertificate reads the certificate of an answer and keeps it only when it is for key,
// names the node (names says whether it does, with an error that says how it does not) and
// verifies against ca for client authentication. Every error wraps c.ErrBadResponse.
func (c Call) CheckCertificate(certPEM []byte, key *ecdsa.PrivateKey, ca *x509.Certificate,
	names func(*x509.Certificate) error,
) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != certificatePEMType {
		return nil, fmt.Errorf("%w: the certificate is not PEM", c.ErrBadResponse)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the certificate: %w", c.ErrBadResponse, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: the certificate is for another key", c.ErrBadResponse)
	}
	if err := names(cert); err != nil {
		return nil, fmt.Errorf("%w: %w", c.ErrBadResponse, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: the certificate does not verify as a client certificate: %w", c.ErrBadResponse, err)
	}
	return cert, nil
}

// ParseCA reads a PEM CA certificate, from a file or an answer.
func ParseCA(caPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != certificatePEMType {
		return nil, errors.New("the CA is not a PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, errors.New("the CA certificate is not a CA")
	}
	return ca, nil
}
