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

// Package agent assembles edgecore from its components: the local store (MetaManager), EdgeHub,
// the certificate renewer and the loopback /healthz and /metrics endpoint. It is the only place
// that knows how they fit.
// Like everything under edge/, it must not import client-go or controller-runtime.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/bus"
	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/hub"
	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/edge/renew"
	"github.com/edgetwin/edgetwin/edge/twin"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Version is edgecore's version, set at build time with -ldflags -X.
var Version = "v0.0.0-dev"

// Options configure a run.
type Options struct {
	// DataDir holds edgecore.yaml, the credentials and the store.
	DataDir string
	// MetricsAddress is where /healthz and /metrics listen; loopback by default, "0" turns them off.
	MetricsAddress string
	// Profiling adds Go's /debug/pprof endpoints to the metrics address, for memory and CPU
	// profiles of a running edgecore.
	Profiling bool
	// Logger receives the agent's logs.
	Logger logr.Logger
	// Ready, if set, is called with the metrics listener's address once it listens.
	Ready func(metricsAddr net.Addr)
	// RenewBefore, when positive, renews the node certificate once less than this is left of
	// it; zero renews once a third of its lifetime is left (see renew.Config).
	RenewBefore time.Duration
}

// Run runs edgecore until ctx ends.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.DataDir)
	if err != nil {
		return err
	}
	// The renewer comes before clientTLS: New finishes a renewal a crash interrupted, so that
	// the key pair loads.
	renewer, err := renew.New(renew.Config{ServerURL: cfg.Server, CertFile: config.Path(o.DataDir, cfg.CertFile),
		KeyFile: config.Path(o.DataDir, cfg.KeyFile), CAFile: config.Path(o.DataDir, cfg.CAFile),
		RenewBefore: o.RenewBefore, Logger: o.Logger.WithName("renew")})
	if err != nil {
		return err
	}
	tlsCfg, err := clientTLS(o.DataDir, cfg)
	if err != nil {
		return err
	}
	store, err := meta.Open(config.Path(o.DataDir, cfg.Database))
	if err != nil {
		return fmt.Errorf("opening the local store: %w", err)
	}
	defer func() { _ = store.Close() }()

	// DeviceTwin comes before EdgeHub: it restores every device and twin from the store (the
	// cloud may be unreachable) and is EdgeHub's listener for devices the cloud sends.
	eventBus, err := newBus(cfg, o.Logger.WithName("bus"))
	if err != nil {
		return err
	}
	defer func() { _ = eventBus.Close() }()
	pub := newAsyncBus(eventBus)
	var h *hub.Hub
	devices, err := twin.New(twin.Config{NodeName: cfg.NodeName, Store: store, Bus: pub,
		Notify: func() { h.Notify() }, Logger: o.Logger.WithName("twin")})
	if err != nil {
		return fmt.Errorf("restoring the device twins: %w", err)
	}
	// Edged, when a runtime is configured, starts the stored pods without waiting for the
	// cloud; in the background, so that a runtime that cannot start yet never takes the
	// node's devices and link down with it.
	route := listener{devices: devices}
	workloads, err := newWorkloads(cfg, o.DataDir, store, func() { h.Notify() }, o.Logger)
	if err != nil {
		return err
	}
	if workloads != nil {
		route.pods = workloads
	}
	h, err = hub.New(hub.Config{URL: cfg.HubURL(), TLSConfig: tlsCfg, Store: store, Agent: agentInfo(),
		Listener: route, Logger: o.Logger.WithName("edgehub")})
	if err != nil {
		return err
	}

	var srv *http.Server
	if o.MetricsAddress != "0" {
		l, err := net.Listen("tcp", o.MetricsAddress)
		if err != nil {
			return fmt.Errorf("listening for /metrics on %s: %w", o.MetricsAddress, err)
		}
		srv = &http.Server{Handler: endpoints(h, store, eventBus, pub, devices, workloads, o.Profiling), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		if o.Ready != nil {
			o.Ready(l.Addr())
		}
	}
	o.Logger.Info("Starting edgecore", "version", Version, "node", cfg.NodeName, "server", cfg.Server)
	// EdgeHub picks up a renewed certificate at its next handshake (clientTLS reads it from disk).
	renewCtx, stopRenewing := context.WithCancel(ctx)
	var renewing sync.WaitGroup
	renewing.Go(func() { renewer.Run(renewCtx) })
	renewing.Go(func() { runDevices(renewCtx, eventBus, pub, devices, o.Logger.WithName("devices")) })
	if workloads != nil {
		renewing.Go(func() { workloads.run(renewCtx) })
	}
	err = h.Run(ctx)
	stopRenewing()
	renewing.Wait()
	if srv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// clientTLS trusts only the edgetwin CA and presents the node's certificate, read from disk at
// every handshake so that a renewed certificate is used without a restart.
func clientTLS(dataDir string, cfg *config.Config) (*tls.Config, error) {
	caPEM, err := os.ReadFile(config.Path(dataDir, cfg.CAFile))
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", cfg.CAFile)
	}
	certFile, keyFile := config.Path(dataDir, cfg.CertFile), config.Path(dataDir, cfg.KeyFile)
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("loading the node certificate: %w", err)
	}
	var mu sync.Mutex
	return &tls.Config{
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				// The renewer writes the key, then renames the certificate into place; a
				// handshake between the two sees a mismatched pair for a moment. Read again once
				// rather than fail the handshake and wait for a redial.
				time.Sleep(100 * time.Millisecond)
				if c, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
					return nil, fmt.Errorf("loading the node certificate: %w", err)
				}
			}
			return &c, nil
		},
	}, nil
}

// ErrNoEdged refuses a config that asks for pods of an edgecore built without Edged (EdgedBuiltIn).
var ErrNoEdged = errors.New("this edgecore was built without Edged (build tag noedged), so it cannot run pods: " +
	"remove the edged section from edgecore.yaml, or install the full edgecore")

// agentInfo describes this agent and machine for the Hello.
func agentInfo() wire.AgentInfo {
	a := wire.AgentInfo{Version: Version, OS: runtime.GOOS, Arch: runtime.GOARCH}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		a.KernelVersion = strings.TrimSpace(string(raw))
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, addr := range addrs {
			if ipn, ok := addr.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				a.Addresses = append(a.Addresses, ipn.IP.String())
			}
		}
	}
	return a
}

// endpoints serves /healthz (the process runs), /readyz (synced with the cloud) and /metrics.
func endpoints(h *hub.Hub, store *meta.Store, eb *bus.Bus, pub *asyncBus, t *twin.DeviceTwin, rt *podRuntime, profiling bool) http.Handler {
	reg := &metricSet{}
	gauge, counter := reg.gauge, reg.counter
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge("edgetwin_edgehub_connected", "1 while a session with CloudHub is up.", func() float64 { return b(h.Stats().Connected) })
	gauge("edgetwin_edgehub_synced", "1 once the cloud's state has been received on the current session.",
		func() float64 { return b(h.Stats().Synced) })
	gauge("edgetwin_edgehub_outbox_pending", "Reports waiting for the cloud's acknowledgement.", func() float64 {
		n, _ := store.PendingCount()
		return float64(n)
	})
	counter("edgetwin_edgehub_dials_total", "Connection attempts.", func() float64 { return float64(h.Stats().Dials) })
	counter("edgetwin_edgehub_messages_in_total", "Messages received.", func() float64 { return float64(h.Stats().MessagesIn) })
	counter("edgetwin_edgehub_messages_out_total", "Messages sent.", func() float64 { return float64(h.Stats().MessagesOut) })
	counter("edgetwin_edgehub_bytes_in_total", "Bytes received.", func() float64 { return float64(h.Stats().BytesIn) })
	counter("edgetwin_edgehub_bytes_out_total", "Bytes sent.", func() float64 { return float64(h.Stats().BytesOut) })
	gauge("edgetwin_eventbus_connected", "1 while the MQTT client is connected and subscribed.", func() float64 { return b(eb.Connected()) })
	counter("edgetwin_eventbus_messages_in_total", "MQTT messages delivered to handlers.",
		func() float64 { return float64(eb.Stats().MessagesIn) })
	counter("edgetwin_eventbus_messages_out_total", "MQTT messages the broker acknowledged.",
		func() float64 { return float64(eb.Stats().MessagesOut) })
	counter("edgetwin_eventbus_dropped_total", "MQTT messages dropped because the publish queue was full.",
		func() float64 { return float64(pub.dropped.Load()) })
	gauge("edgetwin_twin_devices", "Devices on this node.", func() float64 { return float64(t.Stats().Devices) })
	counter("edgetwin_twin_reports_accepted_total", "Reported property values accepted and queued for the cloud.",
		func() float64 { return float64(t.Stats().ReportsAccepted) })
	counter("edgetwin_twin_deltas_sent_total", "Deltas published to mappers.", func() float64 { return float64(t.Stats().DeltasSent) })
	reg.counterVec("edgetwin_twin_reports_refused_total", "Reports refused, by reason.", "reason", func() map[string]float64 {
		refused := map[string]float64{}
		for reason, n := range t.Stats().ReportsRefused {
			refused[reason] = float64(n)
		}
		return refused
	})
	if rt != nil {
		rt.registerMetrics(gauge, counter)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.Synced() {
			http.Error(w, "not synced with the cloud", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", reg)
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
