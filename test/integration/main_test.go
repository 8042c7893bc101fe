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

// Package integration runs edgetwin's binaries as real processes against a real API server:
// cloudcore, edgecore and kubectl, with real websockets, TLS and SQLite. It is part of 'make
// test'; it builds the binaries itself (they are this repository's; the control plane comes
// from 'make control-plane').
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

const systemNamespace = "edgetwin-system"

var (
	k8s        client.Client
	kubeconfig string
	binDir     string
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	dir, err := os.MkdirTemp("", "edgetwin-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	binDir = filepath.Join(dir, "bin")
	for _, cmd := range []string{"cloudcore", "edgecore"} {
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
		build.Dir = repoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", cmd, err, out)
			return 1
		}
	}
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if k8s, err = cp.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func repoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// proc is a running binary whose output is kept for the failure report.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
	once sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// start runs a binary from binDir until the test ends (or stop is called).
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(filepath.Join(binDir, name), args...), out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit (killing it after 20 s).
func (p *proc) stop(t *testing.T) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		// A non-zero exit after SIGTERM is the process's business; its output shows it.
		select {
		case err := <-p.done:
			_ = err
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			err := <-p.done
			_ = err
			t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		}
	})
}

// edgecoreCmd runs edgecore to completion and returns its combined output and exit code.
func edgecoreCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "edgecore"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running edgecore: %v", err)
	}
	return string(out), 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// cloudcore is a running cloudcore with its addresses.
type cloudcore struct {
	*proc
	hubPort     int
	metricsAddr string
	probeAddr   string
}

func startCloudcore(t *testing.T, hubPort int) *cloudcore {
	t.Helper()
	c := &cloudcore{hubPort: hubPort, metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), probeAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	c.proc = start(t, "cloudcore", "--kubeconfig", kubeconfig, "--namespace", systemNamespace,
		"--hub-bind-address", fmt.Sprintf("127.0.0.1:%d", hubPort), "--advertise-address", "127.0.0.1",
		"--metrics-bind-address", c.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address", c.probeAddr,
		"--hub-ping-interval", "1s", "--hub-pong-wait", "5s")
	waitFor(t, "cloudcore to be ready", func() bool { return httpOK("http://" + c.probeAddr + "/readyz") })
	return c
}

func (c *cloudcore) serverURL() string { return fmt.Sprintf("https://127.0.0.1:%d", c.hubPort) }

// metric returns the sum of a Prometheus series on the metrics endpoint whose line matches
// the pattern (name and labels), or -1 when it cannot be read.
func metric(addr, pattern string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	re := regexp.MustCompile("^" + pattern + ` ([0-9.e+-]+)$`)
	sum := 0.0
	for line := range strings.SplitSeq(body.String(), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			sum += v
		}
	}
	return sum
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "error: " + err.Error() + ": " + string(out)
	}
	return strings.TrimSpace(string(out))
}
