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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Hub is EdgeHub. Create it with New and start it with Run.
type Hub struct {
	cfg    Config
	url    *url.URL
	dialer *websocket.Dialer

	// notify holds one pending wake-up for the writer: Notify never blocks, and calls made
	// while a batch is being sent fold into one.
	notify chan struct{}

	idPrefix string
	ids      atomic.Uint64
	running  atomic.Bool
	stats    counters

	mu      sync.Mutex
	lastErr error
}

// New checks cfg and returns a Hub that has not connected yet.
func New(cfg Config) (*Hub, error) {
	cfg, u, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configuring the edge hub: %w", err)
	}
	prefix := make([]byte, 4)
	_, _ = rand.Read(prefix) // never fails, see crypto/rand.Read
	return &Hub{
		cfg: cfg,
		url: u,
		dialer: &websocket.Dialer{
			TLSClientConfig:  cfg.TLSConfig,
			HandshakeTimeout: cfg.HandshakeTimeout,
			NetDialContext:   cfg.NetDialContext,
		},
		notify:   make(chan struct{}, 1),
		idPrefix: hex.EncodeToString(prefix) + "-",
	}, nil
}

// Run connects to the cloud and keeps connecting until ctx ends; then it closes the connection
// and returns nil. It returns an error only if it is already running. Errors of a session are
// logged and kept for LastError.
func (h *Hub) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return errors.New("the edge hub is already running")
	}
	defer h.running.Store(false)
	log := h.cfg.Logger.WithValues("url", h.url.String())
	attempt := 0
	for ctx.Err() == nil {
		welcomed, err := h.connect(ctx)
		if ctx.Err() != nil {
			break
		}
		h.setLastError(err)
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			log.Error(err, "Cloud refused the connection", "reason", refused.Reason)
		case errors.Is(err, ErrProtocol):
			h.stats.protocolErrors.Add(1)
			log.Error(err, "Dropped the connection: the cloud sent something this edge cannot accept")
		default:
			log.Error(err, "Connection to the cloud ended")
		}
		if welcomed {
			attempt = 0
		}
		delay := h.cfg.Backoff.Delay(attempt, mrand.Float64())
		attempt++
		log.V(1).Info("Waiting before redialing", "delay", delay, "attempt", attempt)
		if !h.wait(ctx, delay) {
			break
		}
	}
	log.Info("Edge hub stopped")
	return nil
}

// wait waits for d on the configured clock and reports whether ctx is still live.
func (h *Hub) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := h.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// Notify tells the hub that the outbox has new reports. It never blocks; while connected, the
// hub sends what is new, and after a reconnect it sends everything pending anyway.
func (h *Hub) Notify() {
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// Connected reports whether a session is up: the cloud has welcomed this edge and the
// connection has not broken since.
func (h *Hub) Connected() bool { return h.stats.connected.Load() }

// Synced reports whether the cloud has sent everything it had for this edge on the current
// session: the store then holds the cloud's state. It is false while disconnected.
func (h *Hub) Synced() bool { return h.stats.synced.Load() }

// LastError returns the error that ended the last session, or nil if none ended yet. A
// *RefusedError says why the cloud refused this edge.
func (h *Hub) LastError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

func (h *Hub) setLastError(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
}

// Stats returns a snapshot of the connection state and traffic counters.
func (h *Hub) Stats() Stats { return h.stats.snapshot() }

// nextID returns a message id unique to this process.
func (h *Hub) nextID() string {
	return h.idPrefix + strconv.FormatUint(h.ids.Add(1), 10)
}
