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
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultCASecretName is the name of the Secret that holds the CA, in cloudcore's namespace.
	DefaultCASecretName = "edgetwin-ca"

	// CAValidity is how long a newly created CA is valid. Rotating a CA means re-joining every
	// node, so it is long.
	CAValidity = 10 * 365 * 24 * time.Hour

	// caCommonName names the CA in its own subject.
	caCommonName = "edgetwin-ca"

	// clockSkew back-dates NotBefore so that a machine whose clock is a little behind still
	// accepts a certificate issued a moment ago.
	clockSkew = 5 * time.Minute

	// certificatePEMType and friends are the PEM block types this package reads and writes.
	certificatePEMType = "CERTIFICATE"
	privateKeyPEMType  = "PRIVATE KEY"
	csrPEMType         = "CERTIFICATE REQUEST"
)

// ErrInvalidCA is returned when the CA Secret exists but does not hold a usable CA: it is never
// replaced silently, since every node trusts the CA it holds.
var ErrInvalidCA = errors.New("invalid edgetwin CA")

// CA is the edgetwin certificate authority: a self-signed ECDSA P-256 certificate and its key.
// It is safe for concurrent use; it never changes after it is loaded.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
	pool    *x509.CertPool
}

// NewCA creates a new self-signed CA in memory, valid for validity from now. EnsureCA is what
// cloudcore uses; NewCA is for it and for tests that need a CA without an API server.
func NewCA(validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity must be positive, got %s", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"edgetwin"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Path length 0: the CA signs leaves only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the CA key: %w", err)
	}
	return LoadCA(
		pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: privateKeyPEMType, Bytes: keyDER}),
	)
}

// LoadCA reads a CA from PEM: one CA certificate and its ECDSA private key (PKCS#8 or SEC 1).
// Errors wrap ErrInvalidCA.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != certificatePEMType {
		return nil, fmt.Errorf("%w: the certificate is not a PEM %q block", ErrInvalidCA, certificatePEMType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: more than one PEM block where one CA certificate was expected", ErrInvalidCA)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the certificate: %w", ErrInvalidCA, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%w: the certificate is not a CA certificate", ErrInvalidCA)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: the CA certificate expired at %s", ErrInvalidCA, cert.NotAfter.Format(time.RFC3339))
	}
	key, err := parseECPrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCA, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%w: the private key does not belong to the certificate", ErrInvalidCA)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: cert.Raw}),
		keyPEM:  bytes.Clone(keyPEM),
		pool:    pool,
	}, nil
}

func parseECPrivateKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("the private key is not PEM")
	}
	switch block.Type {
	case privateKeyPEMType:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the PKCS#8 private key: %w", err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the private key is a %T, not ECDSA", k)
		}
		return ec, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the EC private key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key PEM type %q", block.Type)
	}
}

// The CA Secret lives in cloudcore's namespace, hence a Role rather than a ClusterRole.
// +kubebuilder:rbac:groups="",namespace=edgetwin-system,resources=secrets,verbs=get;create

// EnsureCA loads the CA from the kubernetes.io/tls Secret namespace/name, or creates the Secret
// with a new CA when it does not exist. When two cloudcores start at once, one Create wins and
// the other loads the winner's CA, so the cluster ends with one CA. A Secret that exists but
// does not hold a valid CA is an error wrapping ErrInvalidCA; it is never overwritten.
func EnsureCA(ctx context.Context, c client.Client, namespace, name string) (*CA, error) {
	ca, err := loadCASecret(ctx, c, namespace, name)
	if err == nil || !apierrors.IsNotFound(err) {
		return ca, err
	}
	ca, err = NewCA(CAValidity)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      name,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "edgetwin", "app.kubernetes.io/component": "ca"},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: ca.certPEM, corev1.TLSPrivateKeyKey: ca.keyPEM},
	}
	if err := c.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Another cloudcore created it between our Get and Create: use its CA, not ours.
			return loadCASecret(ctx, c, namespace, name)
		}
		return nil, fmt.Errorf("creating the CA Secret %s/%s: %w", namespace, name, err)
	}
	return ca, nil
}

// loadCASecret reads the CA from its Secret. It wraps the API server's errors with %w, so that
// EnsureCA can still tell an absent Secret (apierrors.IsNotFound) from a broken one.
func loadCASecret(ctx context.Context, c client.Client, namespace, name string) (*CA, error) {
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &secret); err != nil {
		return nil, fmt.Errorf("reading the CA Secret %s/%s: %w", namespace, name, err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("%w: Secret %s/%s has type %q, want %q", ErrInvalidCA, namespace, name, secret.Type, corev1.SecretTypeTLS)
	}
	ca, err := LoadCA(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("loading the CA from Secret %s/%s: %w", namespace, name, err)
	}
	return ca, nil
}

// Certificate returns the CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM, as edge nodes store it.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool returns a pool holding only the CA certificate, for verifying node certificates
// (tls.Config.ClientCAs). Callers must not add to it.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// Hash returns the CA's pin, CAHash of its certificate.
func (ca *CA) Hash() string { return CAHash(ca.cert.Raw) }

// CAHashPrefix starts every pin CAHash returns.
const CAHashPrefix = "sha256:"

// CAHash returns the pin of a CA certificate given in DER, the way kubeadm pins its CA:
// "sha256:" and the lower-case hex of the SHA-256 of the certificate's SubjectPublicKeyInfo.
// Pinning the public key rather than the whole certificate keeps the pin valid across a
// re-issue of the CA certificate with the same key. It returns "" when certDER is not a
// certificate; "" matches no pin.
func CAHash(certDER []byte) string {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return CAHashPrefix + hex.EncodeToString(sum[:])
}

// sign issues a certificate from tmpl for pub, filling in the serial number and capping the
// validity at the CA's own expiry (a leaf outliving its CA would not verify anyway).
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate just signed: %w", err)
	}
	return cert, nil
}

// randomSerial returns a random 128-bit serial number, as RFC 5280 and the CA/B forum ask
// (unpredictable, positive, at most 20 bytes).
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
