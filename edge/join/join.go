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
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/edgetwin/edgetwin/pkg/certapi"
)

const (
	certificatePEMType = "CERTIFICATE"

	// DefaultTimeout bounds a whole join (connect, handshake, request, response) unless
	// WithTimeout says otherwise.
	DefaultTimeout = 30 * time.Second
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
// "UnknownToken", "TokenBoundToOtherNode") and message. Its Operation is "join".
type ServerError = certapi.ServerError

// call words the shared client's errors as a join's.
var call = certapi.Call{Name: "join", Doing: "joining", ErrBadResponse: ErrBadResponse}

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

	key, csrPEM, err := certapi.NewNodeKey(nodeName)
	if err != nil {
		return nil, err
	}
	answer, err := call.Post(ctx, endpoint, tlsConfig, o.timeout,
		certapi.JoinRequest{Token: token, NodeName: nodeName, CSR: string(csrPEM)})
	if err != nil {
		return nil, err
	}
	return checkAnswer(pin, key, nodeName, answer)
}

func joinURL(serverURL string) (*url.URL, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", serverURL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server address %q must be https://host[:port]: the join sends a credential", serverURL)
	}
	return u.JoinPath(certapi.JoinPath), nil
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
		ca, err := certapi.ParseCA(caPEM)
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

// checkAnswer checks the server's answer: the CA has the pinned key, and the certificate is for
// our key, names our node, allows client authentication and verifies against the CA.
func checkAnswer(pin []byte, key *ecdsa.PrivateKey, nodeName string, answer *certapi.Response) (*Result, error) {
	ca, err := certapi.ParseCA([]byte(answer.CA))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if !pinMatches(ca, pin) {
		return nil, fmt.Errorf("%w: the CA in the answer has another public key", ErrCAMismatch)
	}
	cert, err := call.CheckCertificate([]byte(answer.Certificate), key, ca, func(cert *x509.Certificate) error {
		if cert.Subject.CommonName != nodeName {
			return fmt.Errorf("the certificate names node %q, not %q", cert.Subject.CommonName, nodeName)
		}
		if len(cert.URIs) != 1 || !strings.HasPrefix(cert.URIs[0].String(), certapi.NodeURIPrefix) {
			return errors.New("the certificate does not carry the EdgeNode's UID")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keyPEM, err := certapi.KeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Result{
		NodeName:       nodeName,
		NodeUID:        strings.TrimPrefix(cert.URIs[0].String(), certapi.NodeURIPrefix),
		KeyPEM:         keyPEM,
		CertificatePEM: pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: cert.Raw}),
		CAPEM:          pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: ca.Raw}),
		NotAfter:       cert.NotAfter,
	}, nil
}
