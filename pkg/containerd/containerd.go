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

package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// startTimeout bounds how long Start waits for the CRI service to answer.
const startTimeout = 30 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before it kills containerd.
const stopTimeout = 10 * time.Second

// Containerd is a running private containerd.
type Containerd struct {
	cfg         Config
	snapshotter string
	cmd         *exec.Cmd
	exited      chan struct{}
	waitErr     error
	logFile     *os.File
}

// Start writes the config and the CNI network, starts containerd and waits until its CRI
// service answers. On failure the error quotes the end of containerd's log.
func Start(ctx context.Context, cfg Config) (*Containerd, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkInstalled(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Dir, cfg.rootDir(), cfg.StateDir, cfg.cniConfDir(), cfg.cniDataDir(), cfg.hostsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if len(cfg.Socket()) > 100 {
		return nil, fmt.Errorf("containerd: socket path %s is too long for a unix socket; use a shorter Dir", cfg.Socket())
	}
	snapshotter := cfg.Snapshotter
	if snapshotter == "" {
		snapshotter = chooseSnapshotter(cfg.Dir)
	}
	if err := os.WriteFile(cfg.configFile(), []byte(cfg.configTOML(snapshotter)), 0o600); err != nil {
		return nil, fmt.Errorf("containerd: writing its config: %w", err)
	}
	conflist, err := cfg.cniConflist()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.cniConfDir(), "10-"+NetworkName+".conflist"), conflist, 0o644); err != nil {
		return nil, fmt.Errorf("containerd: writing the CNI network: %w", err)
	}
	// A socket left by a killed containerd would make it refuse to start.
	_ = os.Remove(cfg.Socket())
	_ = os.Remove(cfg.Socket() + ".ttrpc")

	logFile, err := os.OpenFile(cfg.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	offset, _ := logFile.Seek(0, 2)
	cmd := exec.Command(cfg.Binary, "--config", cfg.configFile())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a terminal's Ctrl-C reaches only whoever started it; the
	// shims it starts run in their own groups anyway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("containerd: starting %s: %w", cfg.Binary, err)
	}
	c := &Containerd{cfg: cfg, snapshotter: snapshotter, cmd: cmd, exited: make(chan struct{}), logFile: logFile}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("%w; containerd's log (%s) ends with:\n%s", err, cfg.logFile(), tail(cfg.logFile(), offset, 20))
	}
	return c, nil
}

// waitReady polls the CRI Version call until it answers.
func (c *Containerd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited at start: %w", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("containerd's CRI service did not answer within %s: %w", startTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Version(ctx); err != nil {
			last = err
			continue
		}
		return nil
	}
}

// Version asks the CRI service for the runtime's name and version.
func (c *Containerd) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	conn, err := grpc.NewClient("unix://"+c.cfg.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return runtimeapi.NewRuntimeServiceClient(conn).Version(callCtx, &runtimeapi.VersionRequest{})
}

// Endpoint is the CRI endpoint, unix://<socket>.
func (c *Containerd) Endpoint() string { return "unix://" + c.cfg.Socket() }

// Config is the configuration it runs with, defaults filled in.
func (c *Containerd) Config() Config { return c.cfg }

// Snapshotter is the snapshotter in use (chosen at Start when Config.Snapshotter was empty).
func (c *Containerd) Snapshotter() string { return c.snapshotter }

// LogFile is containerd's log.
func (c *Containerd) LogFile() string { return c.cfg.logFile() }

// Stop stops containerd: SIGTERM, then SIGKILL after a while. Containers keep running in their
// shims, as they do when the system's containerd restarts; KillShims ends them.
func (c *Containerd) Stop() error {
	defer func() { _ = c.logFile.Close() }()
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("containerd did not stop within %s of SIGTERM and was killed", stopTimeout)
}

// chooseSnapshotter returns overlayfs when an overlay mount works in dir (root on a file system
// that can be an overlay's upper layer), native otherwise. containerd's overlayfs plugin makes the
// same check but only logs its failure, after which every sandbox fails.
func chooseSnapshotter(dir string) string {
	probe, err := os.MkdirTemp(dir, ".overlay-probe-")
	if err != nil {
		return SnapshotterNative
	}
	defer func() { _ = os.RemoveAll(probe) }()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(probe, d), 0o700); err != nil {
			return SnapshotterNative
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(probe, "lower"), filepath.Join(probe, "upper"), filepath.Join(probe, "work"))
	merged := filepath.Join(probe, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return SnapshotterNative
	}
	_ = unix.Unmount(merged, 0)
	return SnapshotterOverlay
}

// tail returns the last n lines of a file written after offset.
func tail(path string, offset int64, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	if offset <= int64(len(raw)) {
		raw = raw[offset:]
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.ReplaceAll(string(bytes.Join(lines, []byte("\n"))), "\n", "\n  ")
}
