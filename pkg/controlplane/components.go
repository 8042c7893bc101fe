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

package controlplane

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Kubernetes' defaults for kube-controller-manager's node lifecycle controller. They are passed
// as flags all the same, so that what the control plane runs with is written in one place.
const (
	// DefaultNodeMonitorGracePeriod is how long a node may go without a heartbeat (a Lease
	// renewal or a status update) before it is marked Unknown and tainted unreachable.
	DefaultNodeMonitorGracePeriod = 50 * time.Second
	// NodeMonitorPeriod is how often the node lifecycle controller checks the nodes.
	NodeMonitorPeriod = 5 * time.Second
	// NodeStartupGracePeriod is how long a new node may take to report before it is marked
	// Unknown.
	NodeStartupGracePeriod = time.Minute
)

const (
	schedulerName         = "kube-scheduler"
	controllerManagerName = "kube-controller-manager"
	// serviceAccountKeyFile is where envtest's API server keeps the private key it signs
	// service-account tokens with (saKeyFile in controller-runtime's
	// pkg/internal/testing/controlplane), in its certificate directory.
	serviceAccountKeyFile = "sa-signer.key"
	// rootCAFile is the API server's serving CA, written for kube-controller-manager's
	// root-ca-cert-publisher (the kube-root-ca.crt ConfigMap in every namespace).
	rootCAFile = "serving-ca.crt"
	// componentStopWait is how long a component has to exit after SIGTERM before it is killed.
	componentStopWait = 30 * time.Second
	// portAttempts bounds the retries when another process takes the chosen port first.
	portAttempts = 3
)

// component is kube-scheduler or kube-controller-manager, running as a child process with its
// output in a log file.
type component struct {
	name string
	port int
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // how it exited, once done is closed

	mu       sync.Mutex
	stopping bool
}

// nodeMonitorGracePeriod is the value kube-controller-manager runs with.
func (o Options) nodeMonitorGracePeriod() time.Duration {
	if o.NodeMonitorGracePeriod == 0 {
		return DefaultNodeMonitorGracePeriod
	}
	return o.NodeMonitorGracePeriod
}

func (o Options) validate() error {
	if o.NodeMonitorGracePeriod != 0 && o.NodeMonitorGracePeriod <= NodeMonitorPeriod {
		return fmt.Errorf("the node monitor grace period (%s) must be longer than the node monitor period (%s)",
			o.NodeMonitorGracePeriod, NodeMonitorPeriod)
	}
	return nil
}

// binaries lists what the options need from AssetsDir.
func (o Options) binaries() []string {
	bins := []string{"kube-apiserver", "etcd"}
	if o.Scheduler {
		bins = append(bins, schedulerName)
	}
	if o.ControllerManager {
		bins = append(bins, controllerManagerName)
	}
	return bins
}

// startComponents starts what opts ask for against the running API server, waits until each
// is healthy and keeps them in cp for Stop.
func (cp *ControlPlane) startComponents(opts Options, assets string) error {
	certDir := cp.Env.ControlPlane.APIServer.CertDir
	logDir := opts.LogDir
	if logDir == "" {
		logDir = certDir
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	type launch struct {
		name string
		args func(kubeconfig string, port int) []string
	}
	// Both get a kubeconfig of their own for the API and for delegated authorisation of their
	// endpoints (/healthz is always allowed), a secure port on loopback and no leader election.
	// They authenticate clients of their endpoints by the API server's client CA, given as a file
	// rather than looked up in kube-system's extension-apiserver-authentication ConfigMap:
	// envtest configures no request-header CA there, and the lookup would log its absence every
	// minute.
	clientCA := cp.Env.ControlPlane.APIServer.Configure().Get("client-ca-file").Get(nil)
	if len(clientCA) != 1 {
		return fmt.Errorf("envtest's API server has client CA files %v, want one", clientCA)
	}
	common := func(kubeconfig string, port int) []string {
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--client-ca-file=" + clientCA[0],
			"--authentication-skip-lookup",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--leader-elect=false",
		}
	}
	var launches []launch
	if opts.ControllerManager {
		// The flag is one of envtest's defaults unless someone set it: then theirs is the key.
		saKey := cp.Env.ControlPlane.APIServer.Configure().Get("service-account-signing-key-file").
			Get([]string{filepath.Join(certDir, serviceAccountKeyFile)})[0]
		if _, err := os.Stat(saKey); err != nil {
			return fmt.Errorf("envtest's service-account signing key: %w", err)
		}
		rootCA := filepath.Join(certDir, rootCAFile)
		if err := os.WriteFile(rootCA, cp.Config.CAData, 0o644); err != nil {
			return fmt.Errorf("writing the API server's CA for kube-controller-manager: %w", err)
		}
		launches = append(launches, launch{controllerManagerName, func(kubeconfig string, port int) []string {
			return append(common(kubeconfig, port),
				"--service-account-private-key-file="+saKey,
				"--root-ca-file="+rootCA,
				"--use-service-account-credentials=false",
				"--node-monitor-period="+NodeMonitorPeriod.String(),
				"--node-monitor-grace-period="+opts.nodeMonitorGracePeriod().String(),
				"--node-startup-grace-period="+NodeStartupGracePeriod.String(),
			)
		}})
	}
	if opts.Scheduler {
		launches = append(launches, launch{schedulerName, common})
	}
	for _, l := range launches {
		kubeconfig, err := cp.componentKubeconfig(certDir, l.name)
		if err != nil {
			return err
		}
		bin := filepath.Join(assets, l.name)
		logPath := filepath.Join(logDir, l.name+".log")
		for attempt := 1; ; attempt++ {
			port, err := freeLoopbackPort()
			if err != nil {
				return err
			}
			c, err := startComponent(l.name, bin, logPath, port, l.args(kubeconfig, port))
			if err != nil {
				return err
			}
			cp.components = append(cp.components, c)
			err = c.waitHealthy(cp.startTimeout)
			if err == nil {
				// Watched only once up: an exit during start is the error returned here.
				go cp.watch(c)
				break
			}
			// Another process may have taken the port between its choice and the bind.
			if attempt < portAttempts && c.exited() && strings.Contains(tail(c.log), "address already in use") {
				continue
			}
			return err
		}
	}
	return nil
}

// componentKubeconfig writes a kubeconfig for a component, with a user of its name in
// system:masters, into the certificate directory.
func (cp *ControlPlane) componentKubeconfig(certDir, name string) (string, error) {
	user, err := cp.Env.AddUser(envtest.User{Name: "system:" + name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding the user for %s: %w", name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering the kubeconfig for %s: %w", name, err)
	}
	path := filepath.Join(certDir, name+".kubeconfig")
	return path, os.WriteFile(path, raw, 0o600)
}

// startComponent runs bin with args, appending its output to logPath after a header line.
func startComponent(name, bin, logPath string, port int, args []string) (*component, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(f, "\n===== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, as envtest does for the API server and etcd: a Ctrl-C in a
	// terminal reaches only the program that started it, which stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &component{name: name, port: port, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = f.Close()
		close(c.done)
	}()
	return c, nil
}

// watch reports on cp.exited a component that ends before Stop asked it to.
func (cp *ControlPlane) watch(c *component) {
	<-c.done
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if stopping {
		return
	}
	select {
	case cp.exited <- c.exitError():
	default:
	}
}

func (c *component) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitError describes an exit that nobody asked for, with the end of the log; valid once done
// is closed.
func (c *component) exitError() error {
	how := "exited"
	if c.err != nil {
		how = "exited: " + c.err.Error()
	}
	return fmt.Errorf("%s %s. The end of %s:\n%s", c.name, how, c.log, tail(c.log))
}

// waitHealthy polls the component's /healthz until it answers ok, it exits, or timeout passes.
func (c *component) waitHealthy(timeout time.Duration) error {
	// The serving certificate is self-signed, made by the component at start.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a loopback health probe
	}}
	defer hc.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", c.port)
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not healthy (%s) within %s. The end of %s:\n%s", c.name, url, timeout, c.log, tail(c.log))
		}
		select {
		case <-c.done:
			return c.exitError()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the exit, killing the component after componentStopWait.
func (c *component) stop() error {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if c.exited() {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(componentStopWait):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, componentStopWait)
	}
}

// stopComponents stops the components, newest first.
func (cp *ControlPlane) stopComponents() error {
	var errs []error
	for _, c := range slices.Backward(cp.components) {
		errs = append(errs, c.stop())
	}
	cp.components = nil
	return errors.Join(errs...)
}

// freeLoopbackPort returns a TCP port on loopback that nothing listens on now.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a log file, for an error message.
func tail(path string) string {
	const maxLines, maxBytes = 30, 8 << 10
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	if len(raw) > maxBytes {
		raw = raw[len(raw)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
