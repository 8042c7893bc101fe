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
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/go-logr/logr"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// ErrNotLoopback is returned by Start when the internal broker is asked to listen on an address
// that is not loopback and Config.AllowNonLoopback is not set.
var ErrNotLoopback = errors.New("internal mqtt broker address is not loopback")

// broker is the MQTT broker embedded in edgecore (internal mode).
type broker struct {
	server   *mqtt.Server
	listener *listeners.TCP
}

// startBroker binds the listener and starts serving. Binding happens before it returns, so a
// port already in use is an error here and not a log line from a goroutine.
func startBroker(address string, allowNonLoopback bool, log logr.Logger) (*broker, error) {
	if !allowNonLoopback {
		if err := checkLoopback(address); err != nil {
			return nil, err
		}
	}
	server := mqtt.New(&mqtt.Options{
		// Mochi logs every client connection at Info; only its warnings matter to edgecore.
		Logger: slog.New(minLevel{Handler: logr.ToSlogHandler(log), min: slog.LevelWarn}),
	})
	// Allow everyone: the broker listens on loopback only (unless the operator says otherwise),
	// so only processes on this node reach it, and mappers on the node connect without
	// credentials, as they do with KubeEdge's default broker. Credentials and TLS are for the
	// external mode.
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("adding the allow-all auth hook to the internal mqtt broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "edgecore", Address: address})
	if err := server.AddListener(tcp); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("internal mqtt broker cannot listen on %s: %w", address, err)
	}
	if err := server.Serve(); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("starting the internal mqtt broker on %s: %w", address, err)
	}
	return &broker{server: server, listener: tcp}, nil
}

// addr is the address the broker listens on, with the port it got when asked for port 0.
func (b *broker) addr() string {
	return b.listener.Address()
}

// close disconnects every client and closes the listener, which frees the port.
func (b *broker) close() error {
	return b.server.Close()
}

// checkLoopback accepts localhost and loopback IP literals. Any other name is refused rather
// than resolved, since what a name resolves to can change after the check; an empty host would
// mean every interface.
func checkLoopback(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("internal mqtt broker address %q: %w", address, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q (set the bus's AllowNonLoopback to expose it, knowing it has no authentication)",
		ErrNotLoopback, address)
}

// minLevel drops records below min before they reach the wrapped handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

// Enabled implements slog.Handler.
func (h minLevel) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler.
func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

// WithGroup implements slog.Handler.
func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
