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

package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/test/harness"
)

// nodeCertificateValidity is what cloudcore issues for in TestEdgecoreRenewsItsCertificate, and
// renewBefore is when edgecore renews: 5 seconds after a certificate is issued, rather than the
// 40 minutes the one-third rule would wait. The rule itself is tested with a fake clock in
// edge/renew; here the point is the whole path, through real processes.
const (
	nodeCertificateValidity = time.Hour
	renewBefore             = nodeCertificateValidity - 5*time.Second
)

// startCloudcoreIssuing is startCloudcore with --node-certificate-validity, which applies to
// joins and renewals alike.
func startCloudcoreIssuing(t *testing.T, hubPort int, validity time.Duration) *harness.Cloudcore {
	t.Helper()
	return cl.StartCloudcore(t, hubPort, "--node-certificate-validity", validity.String())
}

// readLeaf returns the certificate in a PEM file, or nil while it cannot be read.
func readLeaf(path string) *x509.Certificate {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return cert
}

// TestEdgecoreRenewsItsCertificate: a running edgecore replaces its certificate on disk with a
// new one for the same node and EdgeNode UID that lasts longer, without dropping its session;
// CloudHub then accepts the new certificate on a fresh connection.
func TestEdgecoreRenewsItsCertificate(t *testing.T) {
	const node = "edge-renew"
	cc := startCloudcoreIssuing(t, harness.FreePort(t), nodeCertificateValidity)
	dataDir := t.TempDir()
	certFile, keyFile := filepath.Join(dataDir, "node.crt"), filepath.Join(dataDir, "node.key")
	// Not runCmd: a fourth call with the same binary makes unparam ask for its name parameter
	// to go, in a file this test may not edit.
	join := exec.Command(filepath.Join(cl.BinDir, "edgecore"), "join", "--server", cc.ServerURL(), "--token", token(t, node),
		"--name", node, "--data-dir", dataDir, "--broker-address", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))
	if out, err := join.CombinedOutput(); err != nil {
		t.Fatalf("edgecore join: %v\n%s", err, out)
	}
	joined := readLeaf(certFile)
	if joined == nil {
		t.Fatal("edgecore join wrote no certificate")
	}
	joinedName, joinedUID, err := pki.NodeIdentity(joined)
	if err != nil {
		t.Fatal(err)
	}

	edgeMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	edge := cl.Start(t, "edgecore", "run", "--data-dir", dataDir, "--metrics-bind-address", edgeMetrics,
		"--certificate-renew-before", renewBefore.String())
	harness.WaitFor(t, node+" to be Connected", connected(t, node))
	dials := func() float64 { return harness.Metric(edgeMetrics, "edgetwin_edgehub_dials_total") }
	dialsBefore := dials()

	var renewed *x509.Certificate
	harness.WaitFor(t, "the certificate on disk to be replaced", func() bool {
		renewed = readLeaf(certFile)
		return renewed != nil && !bytes.Equal(renewed.Raw, joined.Raw)
	})
	name, uid, err := pki.NodeIdentity(renewed)
	if err != nil || name != joinedName || uid != joinedUID {
		t.Errorf("the renewed certificate names %q/%q (%v), want %q/%q", name, uid, err, joinedName, joinedUID)
	}
	if renewed.Subject.CommonName != joined.Subject.CommonName || renewed.URIs[0].String() != joined.URIs[0].String() {
		t.Errorf("CN/URI changed: %s %v, was %s %v", renewed.Subject.CommonName, renewed.URIs, joined.Subject.CommonName, joined.URIs)
	}
	if !renewed.NotAfter.After(joined.NotAfter) {
		t.Errorf("the renewed certificate expires at %s, not after the joined one (%s)", renewed.NotAfter, joined.NotAfter)
	}
	if left := time.Until(renewed.NotAfter); left > nodeCertificateValidity || left < nodeCertificateValidity-time.Minute {
		t.Errorf("the renewed certificate has %s left, want cloudcore's --node-certificate-validity %s", left, nodeCertificateValidity)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		// A renewal may be between its key and its certificate; the next read sees both.
		harness.WaitFor(t, "the key and the certificate to match", func() bool {
			_, err := tls.LoadX509KeyPair(certFile, keyFile)
			return err == nil
		})
	}
	if !strings.Contains(edge.Output(), "Renewed the node certificate") {
		t.Error("edgecore did not log the renewal")
	}

	// The session was not dropped for the renewal.
	if !connected(t, node)() || harness.Metric(edgeMetrics, "edgetwin_edgehub_connected") != 1 {
		t.Fatalf("%s is not connected after the renewal", node)
	}
	if got := dials(); got != dialsBefore {
		t.Errorf("edgecore dialled %v more times during the renewal, want none", got-dialsBefore)
	}

	// A new connection presents the renewed certificate (read from disk at every handshake),
	// and CloudHub accepts it.
	cc.Stop(t)
	harness.WaitFor(t, "the edge to notice cloudcore is gone", func() bool { return harness.Metric(edgeMetrics, "edgetwin_edgehub_connected") == 0 })
	if onDisk := readLeaf(certFile); onDisk == nil || bytes.Equal(onDisk.Raw, joined.Raw) {
		t.Fatal("the certificate on disk is not a renewed one")
	}
	startCloudcoreIssuing(t, cc.HubPort, nodeCertificateValidity)
	harness.WaitFor(t, "the edge to reconnect with its renewed certificate", func() bool {
		return harness.Metric(edgeMetrics, "edgetwin_edgehub_connected") == 1 && dials() > dialsBefore
	})
	harness.WaitFor(t, node+" to be Connected again", connected(t, node))
}
