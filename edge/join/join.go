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

package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// The shapes below mirror cloud/join's, which edgecore cannot import; a test in cloud/join
// joins through this package against the real endpoint, so the two cannot drift apart unseen.
const (
	// nodeOrganization and nodeURIPrefix are what cloud/pki writes in a node certificate.
	nodeOrganization = "edgetwin:nodes"
	nodeURIPrefix    = "urn:edgetwin:edgenode:"
	joinPath         = "join"

	certificatePEMType = "CERTIFICATE"

	// DefaultTimeout bounds a whole join (connect, handshake, request, response) unless
	// WithTimeout says otherwise.
	DefaultTimeout = 30 * time.Second
	// maxResponseBytes bounds what we read from the server: a certificate and a CA fit in a
	// few KiB.
	maxResponseBytes = 1 << 20
)

var tokenPattern = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z2-7]{26}\.([0-9a-f]{64})$`)

var (
	// ErrMalformedToken is returned for a token that does not read <id>.<secret>.<ca-pin>;
	// nothing is sent anywhere.
	ErrMalformedToken = errors.New("malformed join token")
	// ErrCAMismatch is returned when the server's CA (in the handshake or in its answer), or
	// the CA file, does not have the public key the token pins. The token is not sent to a
	// server that fails this check.
	ErrCAMismatch = errors.New("the server's CA does not match the join token's pin")
	// ErrBadResponse is returned when the server's answer is not a certificate for our key and
	// node, signed by the CA.
	ErrBadResponse = errors.New("invalid join response")
)

// ServerError is a join the server refused, with its reason (for example "TokenExpired",
// "UnknownToken", "TokenBoundToOtherNode") and message.
type ServerError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Reason is the server's machine-readable reason; empty when the answer had none.
	Reason string
	// Message is the server's explanation.
	Message string
}

func (e *ServerError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("join refused by the server (HTTP %d): %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("join refused by the server (HTTP %d, %s): %s", e.StatusCode, e.Reason, e.Message)
}

// Result is what a node needs to connect to CloudHub.
type Result struct {
	// NodeName and NodeUID are the identity the certificate carries.
	NodeName string
	NodeUID  string
	// KeyPEM is the node's new private key (PKCS#8). It never left this process.
	KeyPEM []byte
	// CertificatePEM is the node's client certificate.
	CertificatePEM []byte
	// CAPEM is the edgetwin CA certificate, to verify CloudHub with.
	CAPEM []byte
	// NotAfter is when the certificate expires, for scheduling its renewal.
	NotAfter time.Time
}

// Option changes how Join connects.
type Option func(*options)

type options struct {
	caPEM   []byte
	caFile  string
	timeout time.Duration
}

// WithCA verifies the server against the given PEM CA certificate, in the standard way, instead
// of trusting whatever CA in the handshake has the pinned key. The CA must still match the pin.
func WithCA(caPEM []byte) Option { return func(o *options) { o.caPEM = caPEM } }

// WithCAFile is WithCA with the CA read from a file.
func WithCAFile(path string) Option { return func(o *options) { o.caFile = path } }

// WithTimeout bounds the whole join; the default is DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Join joins nodeName to the cluster whose join endpoint is at serverURL (https://host[:port],
// the path /join is added), using token. See the package doc for how the server is trusted.
func Join(ctx context.Context, serverURL, token, nodeName string, opts ...Option) (*Result, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	m := tokenPattern.FindStringSubmatch(token)
	if m == nil {
		// Never quote the token: it is a credential and error messages end up in logs.
		return nil, fmt.Errorf("%w: want <6 characters [a-z0-9]>.<26 characters [a-z2-7]>.<64 hex digits>", ErrMalformedToken)
	}
	pin, err := hex.DecodeString(m[1])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	if nodeName == "" {
		return nil, errors.New("a node name is needed to join")
	}
	endpoint, err := joinURL(serverURL)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := o.tlsConfig(pin, endpoint.Hostname())
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the node key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		// The server ignores the subject and writes its own; this one is for people reading it.
		Subject: pkix.Name{CommonName: nodeName, Organization: []string{nodeOrganization}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate signing request: %w", err)
	}
	body, err := json.Marshal(map[string]string{
		"token":    token,
		"nodeName": nodeName,
		"csr":      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the join request: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: o.timeout,
		DisableKeepAlives:   true,
	}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the join request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("joining through %s: %w", endpoint.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the join response: %w", err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadResponse, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, serverError(resp.StatusCode, raw)
	}
	var answer struct {
		Certificate string `json:"certificate"`
		CA          string `json:"ca"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return checkAnswer(pin, key, nodeName, []byte(answer.Certificate), []byte(answer.CA))
}

func joinURL(serverURL string) (*url.URL, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", serverURL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server address %q must be https://host[:port]: the join sends a credential", serverURL)
	}
	return u.JoinPath(joinPath), nil
}

// tlsConfig returns how the handshake is checked: against the CA file when there is one, and
// otherwise against the CA with the pinned key that the server presents in its chain.
func (o *options) tlsConfig(pin []byte, host string) (*tls.Config, error) {
	caPEM := o.caPEM
	if o.caFile != "" {
		var err error
		if caPEM, err = os.ReadFile(o.caFile); err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
	}
	if caPEM != nil {
		ca, err := parseCA(caPEM)
		if err != nil {
			return nil, err
		}
		if !pinMatches(ca, pin) {
			return nil, fmt.Errorf("%w: the given CA has another public key", ErrCAMismatch)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Go's own verification would use the system roots, which know nothing of the edgetwin
		// CA; VerifyConnection below does the whole verification instead, against the pinned CA.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyConnection.
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, pin, host)
		},
	}, nil
}

// verifyPinned accepts a server chain when one of its CA certificates has the pinned public key
// and the leaf verifies against that CA for host, as a serving certificate.
func verifyPinned(chain []*x509.Certificate, pin []byte, host string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: the server presented no certificate", ErrCAMismatch)
	}
	roots := x509.NewCertPool()
	intermediates := x509.NewCertPool()
	found := false
	for _, cert := range chain[1:] {
		if cert.IsCA && pinMatches(cert, pin) {
			roots.AddCert(cert)
			found = true
			continue
		}
		intermediates.AddCert(cert)
	}
	if !found {
		return fmt.Errorf("%w: no CA certificate in the server's chain has the pinned public key", ErrCAMismatch)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verifying the server's certificate against the pinned CA: %w", err)
	}
	return nil
}

func pinMatches(cert *x509.Certificate, pin []byte) bool {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return subtle.ConstantTimeCompare(sum[:], pin) == 1
}

func parseCA(caPEM []byte) (*x509.Certificate, error) {
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

// checkAnswer checks the server's answer: the CA has the pinned key, and the certificate is for
// our key, names our node, allows client authentication and verifies against the CA.
func checkAnswer(pin []byte, key *ecdsa.PrivateKey, nodeName string, certPEM, caPEM []byte) (*Result, error) {
	ca, err := parseCA(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if !pinMatches(ca, pin) {
		return nil, fmt.Errorf("%w: the CA in the answer has another public key", ErrCAMismatch)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != certificatePEMType {
		return nil, fmt.Errorf("%w: the certificate is not PEM", ErrBadResponse)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the certificate: %w", ErrBadResponse, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: the certificate is for another key", ErrBadResponse)
	}
	if cert.Subject.CommonName != nodeName {
		return nil, fmt.Errorf("%w: the certificate names node %q, not %q", ErrBadResponse, cert.Subject.CommonName, nodeName)
	}
	if len(cert.URIs) != 1 || !strings.HasPrefix(cert.URIs[0].String(), nodeURIPrefix) {
		return nil, fmt.Errorf("%w: the certificate does not carry the EdgeNode's UID", ErrBadResponse)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: the certificate does not verify as a client certificate: %w", ErrBadResponse, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the node key: %w", err)
	}
	return &Result{
		NodeName:       nodeName,
		NodeUID:        strings.TrimPrefix(cert.URIs[0].String(), nodeURIPrefix),
		KeyPEM:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		CertificatePEM: pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: cert.Raw}),
		CAPEM:          pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: ca.Raw}),
		NotAfter:       cert.NotAfter,
	}, nil
}

// serverError reads the server's JSON refusal, or keeps a short excerpt of whatever it sent.
func serverError(status int, raw []byte) error {
	var body struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || (body.Reason == "" && body.Message == "") {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &ServerError{StatusCode: status, Message: msg}
	}
	return &ServerError{StatusCode: status, Reason: body.Reason, Message: body.Message}
}
