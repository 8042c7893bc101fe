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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// KillShims kills, with SIGKILL, every shim started for this containerd's socket and every
// process under them (the pods' containers): what a power cut does. Shims of other containerds
// are left alone. It returns once they are gone.
func (c *Containerd) KillShims() error { return KillShims(c.cfg.Socket()) }

// KillShims kills the shims started by the containerd listening on socket, and their
// descendants; see (*Containerd).KillShims.
func KillShims(socket string) error {
	procs, err := processes()
	if err != nil {
		return err
	}
	var shims []int
	for pid, p := range procs {
		if isShimOf(p.cmdline, socket) {
			shims = append(shims, pid)
		}
	}
	victims := descendants(procs, shims)
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range victims {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d survived SIGKILL for 10s", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// RemoveState does what a reboot does to containerd's state directory: it unmounts whatever
// is mounted under it (the containers' root file systems) and removes it. containerd must be
// stopped and its shims killed first.
func (c *Containerd) RemoveState() error { return RemoveState(c.cfg.StateDir) }

// RemoveState unmounts whatever is mounted under stateDir and removes it; see
// (*Containerd).RemoveState. For a containerd someone else started (edgecore's).
func RemoveState(stateDir string) error {
	if err := unmountUnder(stateDir); err != nil {
		return err
	}
	return os.RemoveAll(stateDir)
}

// Purge stops containerd, kills its shims and containers, unmounts everything under its
// directory and removes the directory: for tests, which must leave the machine as they found
// it.
func (c *Containerd) Purge() error {
	c.removeSandboxes()
	errs := []error{c.Stop(), c.KillShims(), unmountUnder(c.cfg.Dir)}
	if c.cfg.StateDir != filepath.Join(c.cfg.Dir, "state") {
		errs = append(errs, unmountUnder(c.cfg.StateDir), os.RemoveAll(c.cfg.StateDir))
	}
	errs = append(errs, os.RemoveAll(c.cfg.Dir))
	return errors.Join(errs...)
}

// removeSandboxes stops and removes every sandbox through CRI while containerd runs, so that CNI
// releases the pods' network namespaces (in the machine-wide /var/run/netns) and IPs.
func (c *Containerd) removeSandboxes() {
	select {
	case <-c.exited:
		return
	default:
	}
	conn, err := grpc.NewClient("unix://"+c.cfg.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, sb := range list.Items {
		_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id})
		_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id})
	}
}

type process struct {
	ppid    int
	cmdline []string
}

// processes reads every process's parent and command line from /proc.
func processes() (map[int]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := map[int]process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; the fields after it are plain.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		procs[pid] = process{ppid: ppid, cmdline: strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")}
	}
	return procs, nil
}

// isShimOf says whether a command line is a runc shim serving the containerd at socket.
func isShimOf(cmdline []string, socket string) bool {
	if len(cmdline) == 0 || !strings.HasPrefix(filepath.Base(cmdline[0]), "containerd-shim") {
		return false
	}
	for i, a := range cmdline {
		if a == "-address" && i+1 < len(cmdline) && cmdline[i+1] == socket {
			return true
		}
	}
	return false
}

// descendants returns roots and every process below them, children first.
func descendants(procs map[int]process, roots []int) []int {
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var out []int
	var walk func(pid int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			walk(c)
		}
		out = append(out, pid)
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

func processAlive(pid int) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie is dead; its parent (the shim, itself killed) may not reap it at once.
	i := bytes.LastIndexByte(raw, ')')
	return i < 0 || i+2 >= len(raw) || raw[i+2] != 'Z'
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest first.
func unmountUnder(dir string) error {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
