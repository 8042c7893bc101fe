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

// Package harness runs edgetwin's binaries as real processes for the integration and e2e
// suites: it builds them, starts the envtest control plane (from 'make control-plane'), runs
// cloudcore, edgecore, the simulator, mosquitto and kubectl, and keeps every process's output
// for the failure report.
package harness

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

// SystemNamespace holds cloudcore's CA and join tokens in the suites.
const SystemNamespace = "edgetwin-system"

// Cluster is a running control plane with the binaries built for it.
type Cluster struct {
	// Client talks to the API server directly.
	Client client.Client
	// Kubeconfig is an admin kubeconfig file for kubectl and the binaries.
	Kubeconfig string
	// BinDir holds the built binaries.
	BinDir string

	dir string
	cp  *controlplane.ControlPlane
}

// Setup builds the named commands (./cmd/NAME), starts the control plane (kube-apiserver and
// etcd) and creates SystemNamespace. Close stops it all.
func Setup(commands ...string) (*Cluster, error) {
	return SetupWith(controlplane.Options{}, commands...)
}

// SetupWith is Setup with the control plane started with opts, for example
// controlplane.Options{Scheduler: true, ControllerManager: true} for a suite whose Deployments
// and DaemonSets must get pods bound to nodes.
func SetupWith(opts controlplane.Options, commands ...string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "edgetwin-suite-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, BinDir: filepath.Join(dir, "bin"), Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := c.setup(opts, commands); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) setup(opts controlplane.Options, commands []string) error {
	for _, cmd := range commands {
		build := exec.Command("go", "build", "-o", filepath.Join(c.BinDir, cmd), "./cmd/"+cmd)
		build.Dir = RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", cmd, err, out)
		}
	}
	var err error
	if c.cp, err = controlplane.StartWith(opts); err != nil {
		return err
	}
	if err := c.cp.WriteKubeconfig(c.Kubeconfig); err != nil {
		return err
	}
	if c.Client, err = c.cp.Client(); err != nil {
		return err
	}
	return c.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}})
}

// Close stops the control plane and removes the suite's files.
func (c *Cluster) Close() {
	if c.cp != nil {
		if err := c.cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	_ = os.RemoveAll(c.dir)
}

// RepoRoot is the directory of the module's go.mod.
func RepoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Proc is a running process whose output is kept for the failure report.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  *LockedBuffer
	done chan error
	once sync.Once
	err  error // how it exited, once stopped
}

// LockedBuffer is a bytes.Buffer safe for a process's writers and a test's readers.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Start runs a built binary until the test ends (or Stop is called); its output is logged if
// the test fails.
func (c *Cluster) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartProgram(t, name, filepath.Join(c.BinDir, name), args...)
}

// StartProgram runs any program as Start does; name labels its output.
func StartProgram(t testing.TB, name, path string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, cmd: exec.Command(path, args...), out: &LockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// Output is what the process has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Stop sends SIGTERM and waits for the process to exit (killing it after 20 s).
func (p *Proc) Stop(t testing.TB) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		// A non-zero exit after SIGTERM is for the caller to judge (ExitErr); its output shows it.
		select {
		case p.err = <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			p.err = <-p.done
			t.Errorf("%s did not stop within 20s of SIGTERM", p.Name)
		}
	})
}

// ExitErr is how the process exited (nil for status 0); valid after Stop.
func (p *Proc) ExitErr() error { return p.err }

// Run runs a built binary to completion and returns its combined output and exit code.
func (c *Cluster) Run(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(filepath.Join(c.BinDir, name), args...).CombinedOutput()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running %s: %v", name, err)
	}
	return string(out), 0
}

// FreePort returns a TCP port on loopback that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// LoopbackAddr returns "127.0.0.1:PORT" with a free port.
func LoopbackAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }

// Cloudcore is a running cloudcore with its addresses.
type Cloudcore struct {
	*Proc
	HubPort     int
	MetricsAddr string
	ProbeAddr   string
}

// StartCloudcore runs cloudcore on hubPort with fast keepalive, extra flags appended, and waits
// until it is ready.
func (c *Cluster) StartCloudcore(t testing.TB, hubPort int, extra ...string) *Cloudcore {
	t.Helper()
	cc := &Cloudcore{HubPort: hubPort, MetricsAddr: LoopbackAddr(t), ProbeAddr: LoopbackAddr(t)}
	args := append([]string{"--kubeconfig", c.Kubeconfig, "--namespace", SystemNamespace,
		"--hub-bind-address", fmt.Sprintf("127.0.0.1:%d", hubPort), "--advertise-address", "127.0.0.1",
		"--metrics-bind-address", cc.MetricsAddr, "--metrics-secure=false", "--health-probe-bind-address", cc.ProbeAddr,
		"--hub-ping-interval", "1s", "--hub-pong-wait", "5s"}, extra...)
	cc.Proc = c.Start(t, "cloudcore", args...)
	WaitFor(t, "cloudcore to be ready", func() bool { return HTTPOK("http://" + cc.ProbeAddr + "/readyz") })
	return cc
}

// ServerURL is the URL edgecore joins and connects to.
func (cc *Cloudcore) ServerURL() string { return fmt.Sprintf("https://127.0.0.1:%d", cc.HubPort) }

// Metric returns the sum of a Prometheus series on the metrics endpoint whose line matches
// the pattern (name and labels), or -1 when it cannot be read.
func Metric(addr, pattern string) float64 {
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

// HTTPOK reports whether a GET of url answers 200.
func HTTPOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitTimeout bounds every WaitFor.
const WaitTimeout = 60 * time.Second

// WaitFor polls cond until it holds, failing the test after WaitTimeout.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kubectl runs the real kubectl against the cluster and returns its trimmed output, or
// "error: ..." with the output when it fails.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.KubectlErr(t, args...)
	if err != nil {
		return "error: " + err.Error() + ": " + out
	}
	return out
}

// KubectlErr runs kubectl and returns its trimmed combined output and error.
func (c *Cluster) KubectlErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return KubectlWith(t, c.Kubeconfig, args...)
}

// KubectlWith runs kubectl with the given kubeconfig (for example one 'edgetwin dev' wrote) and
// returns its trimmed combined output and error.
func KubectlWith(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// StartMosquitto runs Debian's mosquitto on a free loopback port with persistence in a
// directory of the test, and returns its address.
func StartMosquitto(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Fatal("mosquitto is needed: apt-get install -y mosquitto")
		}
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n", port, dir)
	if os.Geteuid() == 0 {
		conf += "user root\n" // otherwise mosquitto drops to its own user, who cannot write dir
	}
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	StartProgram(t, "mosquitto", bin, "-c", filepath.Join(dir, "mosquitto.conf"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitFor(t, "mosquitto to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return addr
}
