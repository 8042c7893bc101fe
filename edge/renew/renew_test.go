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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/edgetwin/edgetwin/cloud/pki"
	cloudrenew "github.com/edgetwin/edgetwin/cloud/renew"
	"github.com/edgetwin/edgetwin/edge/renew"
)

const (
	nodeName = "edge-1"
	nodeUID  = "6f1c2a9e-1b7d-4c55-9e0a-3d2f8b7a6c41"
	otherUID = "0d3c1e2f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
)

// nodes is an in-memory Authorizer for the real cloud handler: the UID edge-1's EdgeNode has
// now, and how many renewals reached it.
type nodes struct {
	uid      atomic.Value
	attempts atomic.Int32
}

func (n *nodes) Authorize(_ context.Context, name, uid string) error {
	n.attempts.Add(1)
	if name != nodeName || uid != n.uid.Load().(string) {
		return fmt.Errorf("the certificate was issued for an earlier EdgeNode %s", name)
	}
	return nil
}

// cloud is cloudcore's renewal endpoint (the real handler) on loopback TLS, configured as
// cloud/server configures it. It issues for 2h, longer than the joins here, so that a renewed
// certificate always expires later than the one it replaces.
type cloud struct {
	url   string
	ca    *pki.CA
	nodes *nodes
}

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// serveTLS serves h like CloudHub's port: a serving certificate from ca, client certificates
// verified against ca when given.
func serveTLS(t *testing.T, ca *pki.CA, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	serving, err := ca.ServerCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	c := &cloud{ca: newCA(t), nodes: &nodes{}}
	c.nodes.uid.Store(nodeUID)
	mux := http.NewServeMux()
	mux.Handle(cloudrenew.Path, &cloudrenew.Handler{CA: c.ca, Authorizer: c.nodes, CertificateValidity: 2 * time.Hour})
	c.url = serveTLS(t, c.ca, mux)
	return c
}

// files are a joined node's credentials.
type files struct{ cert, key, ca string }

func (f files) read(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = os.ReadFile(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// newCSR returns a new key and a PEM CSR for it.
func newCSR(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeName}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func keyPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// join writes what 'edgecore join' writes: a key, a certificate valid for an hour and the CA.
func join(t *testing.T, ca *pki.CA) files {
	t.Helper()
	dir := t.TempDir()
	f := files{cert: filepath.Join(dir, "node.crt"), key: filepath.Join(dir, "node.key"), ca: filepath.Join(dir, "ca.crt")}
	key, csr := newCSR(t)
	certPEM, err := ca.SignNodeCSR(csr, nodeName, nodeUID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{f.key: keyPEM(t, key), f.cert: certPEM, f.ca: ca.CertPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newRenewer(t *testing.T, url string, f files, mutate func(*renew.Config)) *renew.Renewer {
	t.Helper()
	cfg := renew.Config{ServerURL: url, CertFile: f.cert, KeyFile: f.key, CAFile: f.ca, Logger: testr.New(t)}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := renew.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs r until the test ends.
func run(t *testing.T, r *renew.Renewer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// eventually waits, within a bound, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("not PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// checkRenewed checks that f holds a valid new pair for the same node, later than old.
func checkRenewed(t *testing.T, ca *pki.CA, f files, old *x509.Certificate) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		t.Fatalf("the files do not hold a key pair: %v", err)
	}
	name, uid, err := pki.NodeIdentity(pair.Leaf)
	if err != nil || name != nodeName || uid != nodeUID {
		t.Errorf("the new certificate names %q/%q (%v), want %s/%s", name, uid, err, nodeName, nodeUID)
	}
	if pair.Leaf.SerialNumber.Cmp(old.SerialNumber) == 0 || pair.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(old.PublicKey) {
		t.Error("the certificate or its key was not replaced")
	}
	if !pair.Leaf.NotAfter.After(old.NotAfter) {
		t.Errorf("the new certificate expires at %s, not after the old one (%s)", pair.Leaf.NotAfter, old.NotAfter)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the new certificate does not verify against the CA: %v", err)
	}
	if info, err := os.Stat(f.key); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, info.Mode())
	}
	if _, err := os.Stat(f.cert + renew.StagedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the staged certificate is still there: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(f.cert), ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files were left: %v", leftovers)
	}
}

func TestRunRenewsWhenAThirdOfTheLifetimeIsLeft(t *testing.T) {
	c := newCloud(t)
	// Issued 5 minutes back-dated, so the lifetime is 65 minutes and the renewal is due ~38m from now.
	f := join(t, c.ca)
	oldCert, oldKey := f.read(t)
	old := leaf(t, oldCert)
	due := old.NotAfter.Add(-old.NotAfter.Sub(old.NotBefore) / 3)
	clk := clocktesting.NewFakeClock(time.Now())
	run(t, newRenewer(t, c.url, f, func(cfg *renew.Config) { cfg.Clock = clk }))

	eventually(t, "the first check", clk.HasWaiters)
	clk.SetTime(due.Add(-time.Second))
	if cert, key := f.read(t); !bytes.Equal(cert, oldCert) || !bytes.Equal(key, oldKey) || c.nodes.attempts.Load() != 0 {
		t.Fatal("the certificate was renewed with more than a third of its lifetime left")
	}

	clk.SetTime(due)
	eventually(t, "the renewal and the next check", func() bool { return clk.HasWaiters() && c.nodes.attempts.Load() == 1 })
	checkRenewed(t, c.ca, f, old)
}

func TestARefusalKeepsTheCredentialsAndIsRetriedWithBackoff(t *testing.T) {
	c := newCloud(t)
	c.nodes.uid.Store(otherUID) // the EdgeNode was re-created: the cloud refuses this node
	f := join(t, c.ca)
	oldCert, oldKey := f.read(t)
	clk := clocktesting.NewFakeClock(time.Now())
	run(t, newRenewer(t, c.url, f, func(cfg *renew.Config) {
		cfg.Clock = clk
		cfg.RenewBefore = 2 * time.Hour // due at once
	}))
	attempted := func(n int32) func() bool {
		return func() bool { return clk.HasWaiters() && c.nodes.attempts.Load() == n }
	}

	eventually(t, "the first attempt", attempted(1))
	clk.Step(renew.DefaultRetryMin)
	eventually(t, "a retry after the first backoff", attempted(2))
	clk.Step(renew.DefaultRetryMin)
	if got := c.nodes.attempts.Load(); got != 2 {
		t.Fatalf("%d attempts before the doubled backoff ran out, want 2", got)
	}
	clk.Step(renew.DefaultRetryMin)
	eventually(t, "a retry after the doubled backoff", attempted(3))
	if cert, key := f.read(t); !bytes.Equal(cert, oldCert) || !bytes.Equal(key, oldKey) {
		t.Fatal("a refused renewal changed the credentials")
	}
	if _, err := os.Stat(f.cert + renew.StagedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused renewal staged a certificate: %v", err)
	}

	// Once the cloud accepts the node again, the next retry renews.
	c.nodes.uid.Store(nodeUID)
	clk.Step(4 * renew.DefaultRetryMin)
	eventually(t, "the renewal", attempted(4))
	checkRenewed(t, c.ca, f, leaf(t, oldCert))
}

func TestRenewKeepsOnlyAnAnswerForThisNodeAndKey(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	sign := func(t *testing.T, signer *pki.CA, csr []byte, name, uid string) string {
		t.Helper()
		certPEM, err := signer.SignNodeCSR(csr, name, uid, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return string(certPEM)
	}
	tests := []struct {
		name string
		// answer returns the status and body the server sends for the CSR it received.
		answer    func(t *testing.T, csr []byte) (int, any)
		wantError func(error) bool
	}{
		{name: "a certificate for another node is refused", answer: func(t *testing.T, csr []byte) (int, any) {
			return http.StatusOK, cloudrenew.Response{Certificate: sign(t, ca, csr, "edge-2", nodeUID), CA: string(ca.CertPEM())}
		}},
		{name: "a certificate for another EdgeNode UID is refused", answer: func(t *testing.T, csr []byte) (int, any) {
			return http.StatusOK, cloudrenew.Response{Certificate: sign(t, ca, csr, nodeName, otherUID), CA: string(ca.CertPEM())}
		}},
		{name: "a certificate for another key is refused", answer: func(t *testing.T, _ []byte) (int, any) {
			_, csr := newCSR(t)
			return http.StatusOK, cloudrenew.Response{Certificate: sign(t, ca, csr, nodeName, nodeUID), CA: string(ca.CertPEM())}
		}},
		{name: "a certificate from another CA is refused", answer: func(t *testing.T, csr []byte) (int, any) {
			return http.StatusOK, cloudrenew.Response{Certificate: sign(t, other, csr, nodeName, nodeUID), CA: string(ca.CertPEM())}
		}},
		{name: "an answer carrying another CA is refused", answer: func(t *testing.T, csr []byte) (int, any) {
			return http.StatusOK, cloudrenew.Response{Certificate: sign(t, other, csr, nodeName, nodeUID), CA: string(other.CertPEM())}
		}},
		{name: "an answer that is not JSON is refused", answer: func(*testing.T, []byte) (int, any) {
			return http.StatusOK, json.RawMessage("{")
		}},
		{name: "an empty answer is refused", answer: func(*testing.T, []byte) (int, any) {
			return http.StatusOK, cloudrenew.Response{}
		}},
		{name: "a refusal is returned with its reason", answer: func(*testing.T, []byte) (int, any) {
			return http.StatusForbidden, cloudrenew.ErrorResponse{Reason: cloudrenew.ReasonNodeRefused, Message: "gone"}
		}, wantError: func(err error) bool {
			se, ok := errors.AsType[*renew.ServerError](err)
			return ok && se.StatusCode == http.StatusForbidden && se.Reason == cloudrenew.ReasonNodeRefused
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serveTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req cloudrenew.Request
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					t.Errorf("the renewer sent a body that is not a request: %v", err)
				}
				status, body := tt.answer(t, []byte(req.CSR))
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(body)
			}))
			f := join(t, ca)
			oldCert, oldKey := f.read(t)
			_, err := newRenewer(t, url, f, nil).Renew(context.Background())
			wantError := tt.wantError
			if wantError == nil {
				wantError = func(err error) bool { return errors.Is(err, renew.ErrBadResponse) }
			}
			if !wantError(err) {
				t.Errorf("Renew error = %v", err)
			}
			if cert, key := f.read(t); !bytes.Equal(cert, oldCert) || !bytes.Equal(key, oldKey) {
				t.Error("a refused answer changed the credentials")
			}
			if _, err := os.Stat(f.cert + renew.StagedSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused answer staged a certificate: %v", err)
			}
		})
	}
}

// The CA file is the only root: a server whose certificate another CA signed gets nothing.
func TestRenewTrustsOnlyTheCAFile(t *testing.T) {
	c := newCloud(t)
	f := join(t, newCA(t)) // a node of another cluster
	if _, err := newRenewer(t, c.url, f, nil).Renew(context.Background()); err == nil {
		t.Fatal("Renew succeeded against a server the CA file does not vouch for")
	}
	if c.nodes.attempts.Load() != 0 {
		t.Error("the request reached the handler")
	}
}

func TestNewFinishesAnInterruptedRenewal(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name string
		// stage leaves the files as a crash would and returns the certificate expected after New.
		stage func(t *testing.T, f files) []byte
	}{
		{name: "a staged certificate for the new key is moved into place", stage: func(t *testing.T, f files) []byte {
			key, csr := newCSR(t)
			certPEM, err := ca.SignNodeCSR(csr, nodeName, nodeUID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for path, data := range map[string][]byte{f.cert + renew.StagedSuffix: certPEM, f.key: keyPEM(t, key)} {
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return certPEM
		}},
		{name: "a staged certificate for another key is discarded", stage: func(t *testing.T, f files) []byte {
			_, csr := newCSR(t)
			certPEM, err := ca.SignNodeCSR(csr, nodeName, nodeUID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.cert+renew.StagedSuffix, certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			current, _ := f.read(t)
			return current
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := join(t, ca)
			want := tt.stage(t, f)
			newRenewer(t, "https://127.0.0.1:1", f, nil)
			if got, _ := f.read(t); !bytes.Equal(got, want) {
				t.Error("the certificate file is not the expected one")
			}
			if _, err := tls.LoadX509KeyPair(f.cert, f.key); err != nil {
				t.Errorf("the files do not hold a key pair: %v", err)
			}
			if _, err := os.Stat(f.cert + renew.StagedSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the staged certificate is still there: %v", err)
			}
		})
	}
}

func TestNewRefusesIncompleteConfigs(t *testing.T) {
	good := renew.Config{ServerURL: "https://cloud.example:10350", CertFile: "c", KeyFile: "k", CAFile: "a"}
	tests := []struct {
		name   string
		mutate func(*renew.Config)
	}{
		{name: "a plain HTTP server is refused", mutate: func(c *renew.Config) { c.ServerURL = "http://cloud.example" }},
		{name: "a server without a host is refused", mutate: func(c *renew.Config) { c.ServerURL = "https://" }},
		{name: "a missing key file is refused", mutate: func(c *renew.Config) { c.KeyFile = "" }},
		{name: "a negative threshold is refused", mutate: func(c *renew.Config) { c.RenewBefore = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			if _, err := renew.New(cfg); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}
