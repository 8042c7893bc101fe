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

package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopWait is how long a child has to exit after SIGTERM before it is killed.
const stopWait = 15 * time.Second

// child is a process the environment started; its output goes to a log file.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// supervisor starts children and stops them all, in reverse order, on the way out.
type supervisor struct {
	logDir string
	mu     sync.Mutex
	kids   []*child
	exited chan *child // a child that ended on its own
}

func newSupervisor(logDir string) *supervisor {
	return &supervisor{logDir: logDir, exited: make(chan *child, 64)}
}

// start runs path with args, appending its output to logDir/name.log.
func (s *supervisor) start(name, path string, args ...string) (*child, error) {
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(f, "\n===== %s: %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C in the terminal reaches only edgetwin dev, which then stops
	// the children in order (edge before cloud) instead of all dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = f.Close()
		close(c.done)
		s.exited <- c
	}()
	s.mu.Lock()
	s.kids = append(s.kids, c)
	s.mu.Unlock()
	return c, nil
}

// runOnce runs a program to completion with its output in logDir/name.log; a failure carries
// the end of the log.
func (s *supervisor) runOnce(ctx context.Context, name, path string, args ...string) error {
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(f, "\n===== %s: %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	_ = f.Close()
	if err != nil {
		c := &child{name: name, log: logPath}
		return fmt.Errorf("%s failed (%w); the end of %s:\n%s", name, err, logPath, c.tail())
	}
	return nil
}

// stop stops one child: SIGTERM, then SIGKILL after stopWait.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopWait):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// how says how an ended child exited.
func (c *child) how() string {
	if c.err == nil {
		return "exited with status 0"
	}
	return "exited: " + c.err.Error()
}

// exitedEarly reports whether c has ended.
func (c *child) exitedEarly() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stopAll stops every child, the last started first.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	kids := append([]*child(nil), s.kids...)
	s.mu.Unlock()
	for _, k := range slices.Backward(kids) {
		k.stop()
	}
}

// tailLines is how much of a child's log an error message quotes.
const tailLines = 20

// tail returns the end of a child's log, for an error message.
func (c *child) tail() string {
	const n = tailLines
	f, err := os.Open(c.log)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// waitReady polls url until it answers 200, the child exits, or timeout passes.
func waitReady(ctx context.Context, c *child, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c.exitedEarly() {
			return fmt.Errorf("%s %s before it was ready; the end of %s:\n%s", c.name, c.how(), c.log, c.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready at %s after %s; the end of %s:\n%s", c.name, url, timeout, c.log, c.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitListening polls a TCP address until something accepts, the child exits, or timeout passes.
func waitListening(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		if c.exitedEarly() {
			return fmt.Errorf("%s %s before it listened on %s; the end of %s:\n%s", c.name, c.how(), addr, c.log, c.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s", c.name, addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lock takes the state directory for this process, refusing when another live edgetwin dev
// holds it.
func lock(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "dev.pid")
	if raw, err := os.ReadFile(path); err == nil {
		var pid int
		if _, err := fmt.Sscanf(string(raw), "%d", &pid); err == nil && pid != os.Getpid() && alive(pid) {
			return nil, fmt.Errorf("another edgetwin dev (pid %d) is using %s; stop it first", pid, dir)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return nil, err
	}
	return func() { _ = os.Remove(path) }, nil
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}
