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

package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// ConnectPath is the path of CloudHub's websocket endpoint.
const ConnectPath = "/v1/connect"

// Defaults for the zero fields of Config.
const (
	// DefaultReadTimeout leaves room for a few missed pings: the cloud pings more often.
	DefaultReadTimeout = 90 * time.Second
	// DefaultWriteTimeout bounds one message write on a stalled link.
	DefaultWriteTimeout = 15 * time.Second
	// DefaultHandshakeTimeout bounds the dial, TLS and the wait for the Welcome together.
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultBatchSize is how many reports one Report message carries at most.
	DefaultBatchSize = 100
	// DefaultBatchBytes is about how many bytes of report bodies one Report message carries at
	// most; a single report may exceed it (the store bounds reports by meta.MaxReportSize).
	DefaultBatchBytes = 1 << 20
)

// Config configures a Hub. Zero durations and sizes take the defaults above.
type Config struct {
	// URL is CloudHub's address, wss://host:port; the hub dials ConnectPath under it.
	URL string
	// TLSConfig carries the node's client certificate and the pool of CAs that sign CloudHub's
	// certificate. The caller prepares it (and renews the certificate through GetClientCertificate).
	TLSConfig *tls.Config
	// Store is the edge's local store: objects are stored there, reports come from its outbox.
	Store *meta.Store
	// Agent describes this agent in every Hello.
	Agent wire.AgentInfo
	// Backoff paces redials.
	Backoff Backoff
	// ReadTimeout is how long a connection may stay silent (no message, no ping) before the hub
	// drops it and redials.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of one message.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the dial and the wait for the cloud's answer to the Hello.
	HandshakeTimeout time.Duration
	// BatchSize bounds the number of reports in one Report message.
	BatchSize int
	// BatchBytes bounds the size of the report bodies in one Report message.
	BatchBytes int
	// Clock paces the backoff; tests inject a fake one. Read and write deadlines are on the
	// network connection, so they always follow the real clock.
	Clock clock.Clock
	// NetDialContext, if set, opens the TCP connection (TLS runs over it). Benchmarks use it to
	// count the bytes on the link and to spread many hollow nodes over source addresses; nil
	// dials the usual way.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Listener, if set, learns of every object stored or deleted.
	Listener Listener
	// Logger receives the hub's logs.
	Logger logr.Logger
}

// Listener learns of the objects the hub stores or deletes, after the store has committed them
// and before the cloud is acknowledged. It is called from the session's goroutine, one call at
// a time, while the next messages are being read: it must return quickly, and must not keep
// body beyond the call without copying it.
type Listener interface {
	// ObjectStored is called after an object was stored; ref carries the version stored.
	ObjectStored(ref wire.ObjectRef, body []byte)
	// ObjectDeleted is called after an object was deleted (or found absent).
	ObjectDeleted(ref wire.ObjectRef)
}

// Change is one object the hub stored or deleted.
type Change struct {
	// Ref names the object; for a stored one it carries the version stored.
	Ref wire.ObjectRef
	// Body is the stored content; nil for a deletion. The listener must not keep it beyond the
	// call without copying it.
	Body []byte
	// Deleted is true when the object was deleted (or found absent).
	Deleted bool
}

// BatchListener is a Listener that can take every object change of one commit in one call, in
// the order the cloud sent them, so that it too can write what it derives from them in one
// transaction. The hub calls ObjectsChanged instead of ObjectStored and ObjectDeleted on a
// Listener that implements it, with the same guarantees: after the commit, before the acks.
type BatchListener interface {
	Listener
	// ObjectsChanged is called after the changes were committed, in the cloud's order.
	ObjectsChanged(changes []Change)
}

// withDefaults checks the config and fills in the defaults.
func (c Config) withDefaults() (Config, *url.URL, error) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return c, nil, fmt.Errorf("parsing the cloud URL: %w", err)
	case u.Scheme != "wss":
		// Plain ws would send the node's identity and its reports in the clear, and the cloud
		// identifies nodes by their client certificate only.
		return c, nil, fmt.Errorf("the cloud URL %q must use wss", c.URL)
	case u.Host == "":
		return c, nil, fmt.Errorf("the cloud URL %q has no host", c.URL)
	case c.TLSConfig == nil:
		return c, nil, errors.New("no TLS config: the hub needs a client certificate")
	case c.Store == nil:
		return c, nil, errors.New("no store")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + ConnectPath
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	c.Backoff = c.Backoff.withDefaults()
	return c, u, nil
}
