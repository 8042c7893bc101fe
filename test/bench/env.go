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

// Package bench measures edgetwin at scale: a real control plane, a real cloudcore process, and
// hollow edge nodes — thousands of edge agents in one process, each running the real edge/hub
// code with its own certificate and an in-memory store — plus a real edgecore, broker and
// simulator for the end-to-end figures. cmd/edgetwin-bench runs the scenarios ('make bench');
// the package's test runs every scenario at a small size for correctness only.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/pkg/controlplane"
)

// Namespace is cloudcore's namespace in the benchmarks.
const Namespace = "edgetwin-system"

// Env is a running control plane with cloudcore, for one scenario.
type Env struct {
	Client     client.Client
	Config     *rest.Config
	Kubeconfig string
	BinDir     string
	Dir        string
	CA         *pki.CA
	HubPort    int
	Log        io.Writer

	cp         *controlplane.ControlPlane
	cloudcore  *exec.Cmd
	cloudDone  chan struct{}
	cloudArgs  []string
	probeAddr  string
	MetricsURL string
	requests   *controlplane.Requests
}

// NewEnv starts a control plane and cloudcore (from binDir) with extra flags.
func NewEnv(ctx context.Context, binDir string, log io.Writer, cloudcoreFlags ...string) (*Env, error) {
	dir, err := os.MkdirTemp("", "edgetwin-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{BinDir: binDir, Dir: dir, Log: log, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := e.start(ctx, cloudcoreFlags); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) start(ctx context.Context, flags []string) error {
	var err error
	if e.cp, err = controlplane.Start(); err != nil {
		return err
	}
	e.Config = e.cp.Config
	// The driver creates thousands of objects; client-go's default 5/s would measure itself.
	e.Config.QPS, e.Config.Burst = -1, -1
	if err := e.cp.WriteKubeconfig(e.Kubeconfig); err != nil {
		return err
	}
	if e.requests, err = controlplane.NewRequests(e.Config); err != nil {
		return err
	}
	scheme, err := controlplane.NewScheme()
	if err != nil {
		return err
	}
	if e.Client, err = client.New(e.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		return err
	}
	if e.CA, err = pki.EnsureCA(ctx, e.Client, Namespace, pki.DefaultCASecretName); err != nil {
		return err
	}
	if e.HubPort, err = FreePort(); err != nil {
		return err
	}
	metrics, err := FreePort()
	if err != nil {
		return err
	}
	probe, err := FreePort()
	if err != nil {
		return err
	}
	e.probeAddr = fmt.Sprintf("127.0.0.1:%d", probe)
	e.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
	e.cloudArgs = append([]string{"--kubeconfig", e.Kubeconfig, "--namespace", Namespace,
		"--hub-bind-address", fmt.Sprintf("127.0.0.1:%d", e.HubPort), "--advertise-address", "127.0.0.1",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics), "--metrics-secure=false",
		"--health-probe-bind-address", e.probeAddr}, flags...)
	return e.StartCloudcore(ctx)
}

// StartCloudcore starts cloudcore and waits until it is ready.
func (e *Env) StartCloudcore(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(e.Dir, "cloudcore.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(e.BinDir, "cloudcore"), e.cloudArgs...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting cloudcore: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
	e.cloudcore, e.cloudDone = cmd, done
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := http.Get("http://" + e.probeAddr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("cloudcore exited before it was ready; see %s", filepath.Join(e.Dir, "cloudcore.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("cloudcore was not ready within 2 minutes")
		}
	}
}

// StopCloudcore stops cloudcore with SIGTERM and waits for it.
func (e *Env) StopCloudcore() {
	if e.cloudcore == nil {
		return
	}
	_ = e.cloudcore.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.cloudDone:
	case <-time.After(30 * time.Second):
		_ = e.cloudcore.Process.Kill()
		<-e.cloudDone
	}
	e.cloudcore = nil
}

// CloudcorePID is the running cloudcore's process id.
func (e *Env) CloudcorePID() int { return e.cloudcore.Process.Pid }

// Close stops cloudcore and the control plane and removes the files.
func (e *Env) Close() {
	e.StopCloudcore()
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	_ = os.RemoveAll(e.Dir)
}

// APIServerWrites returns the API server's own count of requests with verb on resource
// (and subresource, "" for the object itself); codes, if given, keeps only those response codes.
func (e *Env) APIServerWrites(ctx context.Context, verb, resource, subresource string, codes ...string) (float64, error) {
	return e.requests.Count(ctx, verb, resource, subresource, codes...)
}

// FreePort returns a loopback port nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ProcStats is what /proc says about a process.
type ProcStats struct {
	CPUSeconds float64 // user + system
	RSSBytes   int64   // resident now
	PeakBytes  int64   // resident at most so far (VmHWM)
	// AnonBytes and FileBytes split RSSBytes (RssAnon, RssFile): the process's own memory
	// (heap, stacks, C allocations) and the pages of files it maps, its binary above all,
	// which are shared and reclaimable.
	AnonBytes, FileBytes int64
	// FilePmdBytes is the part of FileBytes mapped in 2 MiB pages (smaps_rollup's
	// FilePmdMapped): with large folios in the page cache the kernel maps a binary's text
	// whole, whatever of it runs.
	FilePmdBytes int64
}

// ReadProc reads a process's CPU time and memory.
func ReadProc(pid int) (ProcStats, error) {
	var st ProcStats
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	st.CPUSeconds = (utime + stime) / 100 // USER_HZ is 100 on Linux
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			st.RSSBytes = kb << 10
		case "VmHWM:":
			st.PeakBytes = kb << 10
		case "RssAnon:":
			st.AnonBytes = kb << 10
		case "RssFile:":
			st.FileBytes = kb << 10
		}
	}
	// Not every kernel has smaps_rollup; the figure is then left at zero.
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for line := range strings.SplitSeq(string(rollup), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "FilePmdMapped:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				st.FilePmdBytes = kb << 10
			}
		}
	}
	return st, nil
}
