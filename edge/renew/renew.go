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

package renew

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/pkg/certapi"
)

const (
	certificatePEMType = "CERTIFICATE"

	// StagedSuffix names the file beside the certificate where a new certificate waits while
	// the key is replaced; see New.
	StagedSuffix = ".next"
)

// Defaults for the zero fields of Config.
const (
	DefaultCheckInterval = time.Hour
	DefaultRetryMin      = 10 * time.Second
	DefaultRetryMax      = 5 * time.Minute
	DefaultTimeout       = 30 * time.Second
)

// ErrBadResponse is returned when the server's answer is not a certificate for the new key and
// this node, signed by the CA this node trusts. The current credentials are kept.
var ErrBadResponse = errors.New("invalid renewal response")

// ServerError is a renewal the server refused, with its reason (for example "NodeRefused" when
// the EdgeNode was deleted or re-created) and message. Its Operation is "renewal".
type ServerError = certapi.ServerError

// call words the shared client's errors as a renewal's.
var call = certapi.Call{Name: "renewal", Doing: "renewing", ErrBadResponse: ErrBadResponse}

// Config says where the credentials are and how to renew them.
type Config struct {
	// ServerURL is cloudcore's address, https://host:port, as in edgecore.yaml; the path
	// /v1/renew is added.
	ServerURL string
	// CertFile, KeyFile and CAFile are the node's certificate, its key and the edgetwin CA. The
	// CA is the only root the server is checked against.
	CertFile, KeyFile, CAFile string
	// RenewBefore, when positive, renews once less than this is left of the certificate. Zero
	// renews once less than a third of its lifetime (NotBefore to NotAfter) is left.
	RenewBefore time.Duration
	// CheckInterval is the longest Run sleeps before it reads the certificate again, so that a
	// certificate replaced by another process (a new join) is noticed. Default 1h.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failure: RetryMin, doubling up to
	// RetryMax. RetryMin is also the least time between two renewals, so that a certificate
	// issued with a short validity is not renewed in a loop. Defaults 10s and 5m.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one renewal request (connect, handshake, answer). Default 30s.
	Timeout time.Duration
	// Clock decides when to renew; default the real clock. Certificates are verified against
	// the real time whatever the clock, as TLS does.
	Clock clock.Clock
	// Logger receives what Run does; Renew only returns errors.
	Logger logr.Logger
}

// Renewer renews a node's certificate. It is safe for concurrent use; renewals are serialized.
type Renewer struct {
	cfg      Config
	endpoint *url.URL
	mu       sync.Mutex
}

// New checks cfg and returns a Renewer. It also finishes a renewal a crash cut short: when a
// staged certificate (CertFile+StagedSuffix) belongs to the key in KeyFile, the key was
// replaced and the certificate was not yet, so the staged certificate is moved into place;
// otherwise the staged file is a leftover from before the key was replaced and is removed.
// Call New before anything loads the key pair.
func New(cfg Config) (*Renewer, error) {
	u, err := url.Parse(cfg.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server address %q must be https://host[:port]", cfg.ServerURL)
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.CAFile == "" {
		return nil, errors.New("the certificate, key and CA files are all needed to renew")
	}
	if cfg.RenewBefore < 0 {
		return nil, fmt.Errorf("the renewal threshold must not be negative, got %s", cfg.RenewBefore)
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	r := &Renewer{cfg: cfg, endpoint: u.JoinPath(certapi.RenewPath)}
	if err := r.completeInterrupted(); err != nil {
		return nil, err
	}
	return r, nil
}

// Run renews the certificate whenever it is due, until ctx ends. It looks at start, then when
// the certificate is next due (at most CheckInterval later). A failure is logged and retried
// with backoff; the current credentials stay in use until a new pair has been written.
func (r *Renewer) Run(ctx context.Context) {
	log := r.cfg.Logger
	failures := 0
	// notBefore holds back the next attempt: the backoff after a failure, or RetryMin after a
	// success.
	var notBefore time.Time
	for {
		now := r.cfg.Clock.Now()
		cert, err := r.current()
		var at time.Time
		if err == nil {
			at = r.dueAt(cert)
			if at.Before(notBefore) {
				at = notBefore
			}
			if !now.Before(at) {
				var renewed *x509.Certificate
				if renewed, err = r.Renew(ctx); ctx.Err() != nil {
					return
				}
				if err == nil {
					failures = 0
					notBefore = now.Add(r.cfg.RetryMin)
					log.Info("Renewed the node certificate", "notAfter", renewed.NotAfter, "nextRenewal", r.dueAt(renewed))
					continue
				}
			}
		}
		if err != nil {
			wait := min(r.cfg.RetryMin<<min(failures, 30), r.cfg.RetryMax)
			failures++
			notBefore, at = now.Add(wait), now.Add(wait)
			kv := []any{"retryIn", wait, "failures", failures}
			if cert != nil {
				kv = append(kv, "notAfter", cert.NotAfter)
				if now.After(cert.NotAfter) {
					kv = append(kv, "hint", "the certificate has expired; the cloud refuses it until the node joins again")
				}
			}
			log.Error(err, "Renewing the node certificate failed; the current one stays in use", kv...)
		}
		wait := min(at.Sub(now), r.cfg.CheckInterval)
		log.V(1).Info("Next certificate check", "in", wait)
		timer := r.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
}

// dueAt is when cert should be renewed.
func (r *Renewer) dueAt(cert *x509.Certificate) time.Time {
	if r.cfg.RenewBefore > 0 {
		return cert.NotAfter.Add(-r.cfg.RenewBefore)
	}
	return cert.NotAfter.Add(-cert.NotAfter.Sub(cert.NotBefore) / 3)
}

// current reads the certificate on disk.
func (r *Renewer) current() (*x509.Certificate, error) {
	raw, err := os.ReadFile(r.cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("reading the node certificate: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != certificatePEMType {
		return nil, fmt.Errorf("%s is not a PEM certificate", r.cfg.CertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the node certificate: %w", err)
	}
	return cert, nil
}

// Renew renews the certificate now, whether it is due or not, and returns the new one once it
// and its key are on disk. On any error the files are as they were.
func (r *Renewer) Renew(ctx context.Context) (*x509.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.completeInterrupted(); err != nil {
		return nil, err
	}
	current, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the current node certificate: %w", err)
	}
	nodeName, nodeUID, err := identity(current.Leaf)
	if err != nil {
		return nil, fmt.Errorf("the current certificate: %w", err)
	}
	caPEM, err := os.ReadFile(r.cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	ca, err := certapi.ParseCA(caPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA file %s: %w", r.cfg.CAFile, err)
	}

	key, csrPEM, err := certapi.NewNodeKey(nodeName)
	if err != nil {
		return nil, err
	}
	answer, err := call.Post(ctx, r.endpoint, clientTLS(&current, ca), r.cfg.Timeout, certapi.RenewalRequest{CSR: string(csrPEM)})
	if err != nil {
		return nil, err
	}
	cert, err := checkAnswer(ca, key, nodeName, nodeUID, answer)
	if err != nil {
		return nil, err
	}
	keyPEM, err := certapi.KeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := r.store(keyPEM, pem.EncodeToMemory(&pem.Block{Type: certificatePEMType, Bytes: cert.Raw})); err != nil {
		return nil, err
	}
	return cert, nil
}

// clientTLS presents current as the client certificate and trusts only ca.
func clientTLS(current *tls.Certificate, ca *x509.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &tls.Config{
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		// Always the current certificate, whatever CAs the server says it accepts: it is the
		// credential, and a server that does not take it should say so.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return current, nil },
	}
}

// checkAnswer keeps the answer only when it is what the node had, for the new key: the same CA,
// the same node and UID, and a certificate that verifies against the CA for client
// authentication.
func checkAnswer(ca *x509.Certificate, key *ecdsa.PrivateKey, nodeName, nodeUID string, answer *certapi.Response,
) (*x509.Certificate, error) {
	answerCA, err := certapi.ParseCA([]byte(answer.CA))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if !answerCA.Equal(ca) {
		// A CA change would need every node to learn the new CA some other way; until edgetwin
		// has that, a different CA means a server we should not take certificates from.
		return nil, fmt.Errorf("%w: the answer carries another CA than the node's", ErrBadResponse)
	}
	return call.CheckCertificate([]byte(answer.Certificate), key, ca, func(cert *x509.Certificate) error {
		name, uid, err := identity(cert)
		if err != nil {
			return err
		}
		if name != nodeName || uid != nodeUID {
			return fmt.Errorf("the certificate names node %q with UID %q, not %q with UID %q", name, uid, nodeName, nodeUID)
		}
		return nil
	})
}

// identity reads the node name and EdgeNode UID from a node certificate, as cloud/pki writes
// them.
func identity(cert *x509.Certificate) (nodeName, nodeUID string, err error) {
	if !slices.Equal(cert.Subject.Organization, []string{certapi.NodeOrganization}) {
		return "", "", fmt.Errorf("the certificate's organization is %q, not %q: it is not a node certificate",
			cert.Subject.Organization, certapi.NodeOrganization)
	}
	if cert.Subject.CommonName == "" || len(cert.URIs) != 1 {
		return "", "", errors.New("the certificate does not carry one node name and one EdgeNode UID")
	}
	uid, ok := strings.CutPrefix(cert.URIs[0].String(), certapi.NodeURIPrefix)
	if !ok || uid == "" {
		return "", "", fmt.Errorf("the certificate's URI %q is not an EdgeNode UID", cert.URIs[0])
	}
	return cert.Subject.CommonName, uid, nil
}

// store writes the new pair: the certificate is staged beside its final path, the key replaced,
// then the certificate moved into place. Each step is atomic, and New completes the sequence
// if a crash stops it after the key.
func (r *Renewer) store(keyPEM, certPEM []byte) error {
	staged := r.cfg.CertFile + StagedSuffix
	if err := config.WriteFileAtomic(staged, certPEM, 0o644); err != nil {
		return fmt.Errorf("staging the new certificate: %w", err)
	}
	if err := config.WriteFileAtomic(r.cfg.KeyFile, keyPEM, 0o600); err != nil {
		// The old key is still in place, so the staged certificate is of no use.
		_ = os.Remove(staged)
		return fmt.Errorf("writing the new key: %w", err)
	}
	if err := os.Rename(staged, r.cfg.CertFile); err != nil {
		return fmt.Errorf("moving the new certificate into place (the next start finishes it): %w", err)
	}
	return nil
}

// completeInterrupted finishes or discards a staged certificate; see New.
func (r *Renewer) completeInterrupted() error {
	staged := r.cfg.CertFile + StagedSuffix
	if _, err := os.Stat(staged); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(staged, r.cfg.KeyFile); err == nil {
		if err := os.Rename(staged, r.cfg.CertFile); err != nil {
			return fmt.Errorf("finishing an interrupted renewal: %w", err)
		}
		return nil
	}
	if err := os.Remove(staged); err != nil {
		return fmt.Errorf("removing the certificate of an interrupted renewal: %w", err)
	}
	return nil
}
