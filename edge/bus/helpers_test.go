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

package bus

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
)

const twinUpdate = "$hw/events/device/default/lobby/twin/update"

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receive waits for the next message on ch.
func receive(t *testing.T, ch <-chan message) message {
	t.Helper()
	const timeout = 10 * time.Second
	select {
	case m := <-ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %s", timeout)
		return message{}
	}
}

// receiveSkipping waits for the next message on ch whose payload is not dup, a message the
// test already saw and may see again (QoS 1 redelivery).
func receiveSkipping(t *testing.T, ch <-chan message, dup string) message {
	t.Helper()
	for {
		m := receive(t, ch)
		if m.payload != dup {
			return m
		}
		t.Logf("%q delivered again", dup)
	}
}

type message struct {
	topic   string
	payload string
}

// collector is a handler that sends every message to a buffered channel.
func collector() (Handler, <-chan message) {
	ch := make(chan message, 100)
	return func(topic string, payload []byte) { ch <- message{topic, string(payload)} }, ch
}

// startBus starts a bus and closes it at the end of the test.
func startBus(t *testing.T, cfg Config, subscribe map[string]Handler) *Bus {
	t.Helper()
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = logr.Discard()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	for f, h := range subscribe {
		if err := b.Subscribe(f, h); err != nil {
			t.Fatalf("Subscribe(%s) before Start: %v", f, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return b
}

func internalConfig(id string) Config {
	return Config{Mode: config.BrokerInternal, Address: "127.0.0.1:0", ClientID: id, Logger: logr.Discard()}
}

// mapper is an independent MQTT client, standing in for a device mapper on the node.
type mapper struct {
	client paho.Client
}

func newMapper(t *testing.T, addr, id string) *mapper {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mapper %s cannot connect to %s: %v", id, addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &mapper{client: c}
}

func (m *mapper) publish(t *testing.T, topic, payload string) {
	t.Helper()
	tok := m.client.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mapper publish to %s: %v", topic, tok.Error())
	}
}

func (m *mapper) subscribe(t *testing.T, filter string) <-chan message {
	t.Helper()
	ch := make(chan message, 100)
	tok := m.client.Subscribe(filter, 1, func(_ paho.Client, msg paho.Message) {
		ch <- message{msg.Topic(), string(msg.Payload())}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mapper subscribe to %s: %v", filter, tok.Error())
	}
	return ch
}

// freeAddr returns a loopback address nobody listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// mosquitto is a real mosquitto process on a loopback port, with its config, persistence and
// log in a temporary directory.
type mosquitto struct {
	t    *testing.T
	addr string
	dir  string
	conf string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func mosquittoBinary(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	p, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatal("mosquitto is not installed; the external-broker tests need a real one: apt-get install -y mosquitto")
	}
	return p
}

// startMosquitto writes a config (anonymous, or with a password file holding user/pass when
// user is set) and starts mosquitto; it is killed at the end of the test.
func startMosquitto(t *testing.T, user, pass string) *mosquitto {
	t.Helper()
	bin := mosquittoBinary(t)
	dir := t.TempDir()
	m := &mosquitto{t: t, addr: freeAddr(t), dir: dir, conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log")}
	_, port, _ := net.SplitHostPort(m.addr)
	conf := []string{
		"listener " + port + " 127.0.0.1",
		"persistence true",
		"persistence_location " + dir + "/",
		"persistence_file mosquitto.db",
		"log_dest file " + m.log,
		"log_type all",
	}
	if os.Geteuid() == 0 {
		// As root, mosquitto would switch to the mosquitto user, which cannot write in the
		// test's temporary directory.
		conf = append(conf, "user root")
	}
	if user == "" {
		conf = append(conf, "allow_anonymous true")
	} else {
		pw := filepath.Join(dir, "passwd")
		out, err := exec.Command(mosquittoPasswd(t), "-b", "-c", pw, user, pass).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		conf = append(conf, "allow_anonymous false", "password_file "+pw)
	}
	if err := os.WriteFile(m.conf, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start(bin)
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			logs, _ := os.ReadFile(m.log)
			t.Logf("mosquitto log:\n%s", logs)
		}
	})
	return m
}

func mosquittoPasswd(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd is not installed: apt-get install -y mosquitto")
	}
	return p
}

// start runs mosquitto with the config and waits until it accepts connections.
func (m *mosquitto) start(bin string) {
	t := m.t
	t.Helper()
	cmd := exec.Command(bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mosquitto: %v", err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
	eventually(t, 10*time.Second, func() bool {
		select {
		case <-m.done:
			logs, _ := os.ReadFile(m.log)
			t.Fatalf("mosquitto exited at start: %s", logs)
		default:
		}
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, "mosquitto does not listen on %s", m.addr)
}

// stop ends mosquitto with SIGTERM, so it writes its persistence file, and waits for it.
func (m *mosquitto) stop() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		m.t.Fatalf("stopping mosquitto: %v", err)
	}
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.t.Fatal("mosquitto did not stop within 10s of SIGTERM")
	}
}

func (m *mosquitto) restart() {
	m.t.Helper()
	m.stop()
	m.start(m.cmd.Path)
}

func (m *mosquitto) kill() {
	select {
	case <-m.done:
	default:
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// gate forwards TCP connections to a target, and can be shut so that connection attempts fail
// at once. It lets a test hold the bus off the broker for as long as it needs, instead of
// guessing how long paho's reconnect backoff lasts.
type gate struct {
	addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	open  bool
	conns []net.Conn
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ln.Addr().String(), target: target, ln: ln, open: true}
	go g.serve()
	t.Cleanup(func() { _ = ln.Close(); g.shut() })
	return g
}

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if !open {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, up)
		g.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// shut refuses new connections and cuts the current ones.
func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

func (g *gate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
}
