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

package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Node is a hollow edge node: the real EdgeHub and store of an edgecore, without DeviceTwin or
// a broker. What the cloud sends it is recorded instead of handed to mappers.
type Node struct {
	Name  string
	UID   string
	Hub   *hub.Hub
	Store *meta.Store

	fleet *Fleet
}

// Arrival is a desired value stored by a hollow node, and when.
type Arrival struct {
	Device string // namespace/name
	Value  string
	At     time.Time
}

// Fleet is many hollow nodes in this process.
type Fleet struct {
	Nodes []*Node
	// Property whose desired values are recorded on arrival.
	Property string

	mu       sync.Mutex
	arrivals []Arrival

	// linkIn and linkOut count the bytes on every node's TCP connection (TLS records, so
	// websocket pings and TLS overhead included; TCP/IP headers not).
	linkIn, linkOut atomic.Uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFleet creates n EdgeNodes named prefix-0 .. prefix-(n-1) in the API server, issues each a
// certificate from the CA (ECDSA P-256, signed through the same CSR path as a join), and opens
// an in-memory store for each. The nodes do not connect until Start.
func NewFleet(ctx context.Context, e *Env, prefix string, n int) (*Fleet, error) {
	f := &Fleet{Nodes: make([]*Node, n), Property: setpoint}
	// Creating the EdgeNodes is the API server's work; a few workers keep it busy.
	if err := parallel(ctx, n, 16, func(i int) error {
		node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)}}
		if err := e.Client.Create(ctx, node); err != nil {
			return fmt.Errorf("creating EdgeNode %s: %w", node.Name, err)
		}
		f.Nodes[i] = &Node{Name: node.Name, UID: string(node.UID), fleet: f}
		return nil
	}); err != nil {
		return nil, err
	}
	// Keys and certificates are CPU work: one worker per core.
	if err := parallel(ctx, n, runtime.GOMAXPROCS(0), func(i int) error {
		nd := f.Nodes[i]
		cert, err := nodeCertificate(e, nd.Name, nd.UID)
		if err != nil {
			return err
		}
		if nd.Store, err = meta.OpenInMemory(fmt.Sprintf("%s-%p", nd.Name, nd)); err != nil {
			return err
		}
		nd.Hub, err = hub.New(hub.Config{
			URL:       fmt.Sprintf("wss://127.0.0.1:%d", e.HubPort),
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: e.CA.Pool(), Certificates: []tls.Certificate{cert}},
			Store:     nd.Store,
			Agent:     wire.AgentInfo{Version: "hollow", OS: "linux", Arch: runtime.GOARCH},
			Listener:  nd,
			Logger:    logr.Discard(),
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, in: &f.linkIn, out: &f.linkOut}, nil
			},
		})
		return err
	}); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// nodeCertificate makes a key and has the CA sign a CSR for it, as a join does.
func nodeCertificate(e *Env, name, uid string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := e.CA.SignNodeCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), name, uid, 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing %s's certificate: %w", name, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return tls.Certificate{}, fmt.Errorf("no certificate in what the CA signed for %s", name)
	}
	return tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}, nil
}

// Start connects every node at once (the connect storm).
func (f *Fleet) Start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	for _, nd := range f.Nodes {
		f.wg.Go(func() { _ = nd.Hub.Run(ctx) })
	}
}

// Close disconnects every node and closes the stores.
func (f *Fleet) Close() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, nd := range f.Nodes {
		if nd != nil && nd.Store != nil {
			_ = nd.Store.Close()
		}
	}
}

// Synced counts the nodes whose hub has received the cloud's state on its current session.
func (f *Fleet) Synced() int {
	n := 0
	for _, nd := range f.Nodes {
		if nd.Hub.Synced() {
			n++
		}
	}
	return n
}

// Traffic returns the bytes received and sent on the fleet's connections so far.
func (f *Fleet) Traffic() (in, out uint64) { return f.linkIn.Load(), f.linkOut.Load() }

// countingConn counts the bytes through a connection.
type countingConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(uint64(n))
	return n, err
}

// Dials sums the fleet's connection attempts.
func (f *Fleet) Dials() uint64 {
	var d uint64
	for _, nd := range f.Nodes {
		d += nd.Hub.Stats().Dials
	}
	return d
}

// Arrivals returns what has arrived so far.
func (f *Fleet) Arrivals() []Arrival {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Arrival(nil), f.arrivals...)
}

// ObjectStored records the desired value of f.Property of a device that arrived (hub.Listener).
func (n *Node) ObjectStored(ref wire.ObjectRef, body []byte) {
	at := time.Now()
	if ref.Kind != wire.KindDevice {
		return
	}
	var dev wire.Device
	if json.Unmarshal(body, &dev) != nil {
		return
	}
	for _, p := range dev.Properties {
		if p.Name == n.fleet.Property && p.Desired != nil {
			n.fleet.mu.Lock()
			n.fleet.arrivals = append(n.fleet.arrivals, Arrival{Device: ref.Namespace + "/" + ref.Name, Value: *p.Desired, At: at})
			n.fleet.mu.Unlock()
		}
	}
}

// ObjectDeleted implements hub.Listener.
func (n *Node) ObjectDeleted(wire.ObjectRef) {}

// Report queues a reported value the way DeviceTwin does, and wakes the hub.
func (n *Node) Report(namespace, device, property, value string, at time.Time) error {
	body, err := json.Marshal(wire.TwinReport{Property: property, Value: value, Timestamp: at.UnixMilli()})
	if err != nil {
		return err
	}
	if _, err := n.Store.Enqueue(wire.ReportKindDeviceTwin, namespace, device, property, body); err != nil {
		return err
	}
	n.Hub.Notify()
	return nil
}

// parallel runs do(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, do func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// waitUntil polls cond every interval until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	return wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
}
