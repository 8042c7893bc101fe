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

// Package server assembles cloudcore's endpoint for edge agents: one TLS port serving
// CloudHub's websocket (client certificate required) and the join service (token instead),
// with the CA kept in a Secret, the Device projection, session status and report routing. It
// is the only place that knows how those pieces fit; each of them knows nothing of the others.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/autonomy"
	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/nodes"
	"github.com/edgetwin/edgetwin/cloud/nodestatus"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/cloud/projection"
	"github.com/edgetwin/edgetwin/cloud/renew"
	"github.com/edgetwin/edgetwin/cloud/reports"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/cloud/workloads"
	"github.com/edgetwin/edgetwin/controllers"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Options configure the endpoint.
type Options struct {
	// Namespace holds the CA Secret and the join-token Secrets.
	Namespace string
	// BindAddress is where the TLS port listens, for example ":10350".
	BindAddress string
	// AdvertiseAddresses are the addresses edge agents dial; they become the serving
	// certificate's SANs.
	AdvertiseAddresses []string
	// CASecretName names the CA Secret; default "edgetwin-ca".
	CASecretName string
	// CertificateValidity is how long node certificates last; zero takes the join package's default.
	CertificateValidity time.Duration
	// PingInterval and PongWait tune keepalive (see hub.Config).
	PingInterval, PongWait time.Duration
	// StatusWrites is the budget of every status write cloudcore makes for the edge: Device,
	// Node, Lease and Pod status share its QPS and Burst.
	StatusWrites controllers.ReportsOptions
	// StatusWriteTargetLatency is the API server latency above which Device status writes slow
	// down (statuswrite.Governor); 0 turns the governor off.
	StatusWriteTargetLatency time.Duration
	// Workloads runs Pods on edge nodes: Node objects, Pod/ConfigMap/Secret/token projection,
	// Pod status. Off, cloudcore neither caches Pods, ConfigMaps and Secrets nor writes Nodes.
	Workloads bool
	// Nodes tunes the Node objects' Leases (see nodes.Options); its Limiter and QPS are set here.
	Nodes nodes.Options
	// EdgeAutonomy installs the admission policy that keeps an outage from evicting edge Pods.
	EdgeAutonomy bool
}

// Endpoint is the assembled endpoint.
type Endpoint struct {
	Hub     *hub.Hub
	Tracker *nodestatus.Tracker
	Reports *reports.Router
	CA      *pki.CA
	// DeviceStatus is the one writer of Device status (controllers.Options.DeviceStatus).
	DeviceStatus *controllers.DeviceReports

	listener net.Listener
	server   *http.Server
}

// Sessions adapts the endpoint to controllers.Sessions.
type Sessions struct{ e *Endpoint }

// Tracker implements controllers.Sessions.
func (s Sessions) Tracker() *nodestatus.Tracker { return s.e.Tracker }

// Disconnect implements controllers.Sessions.
func (s Sessions) Disconnect(node, reason, message string) { s.e.Hub.Disconnect(node, reason, message) }

// Holds implements controllers.Sessions.
func (s Sessions) Holds(node string, ref wire.ObjectRef) (connected, held bool) {
	return s.e.Hub.Holds(node, ref)
}

// Sessions returns the view of the endpoint that the EdgeNode controller uses.
func (e *Endpoint) Sessions() Sessions { return Sessions{e: e} }

// Addr is the address the endpoint listens on (useful with port 0).
func (e *Endpoint) Addr() net.Addr { return e.listener.Addr() }

// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get;list;watch

// New builds the endpoint and adds it to the manager; it listens at once (so Addr is known) and
// serves once the manager's caches have synced.
func New(ctx context.Context, mgr manager.Manager, opts Options) (*Endpoint, error) {
	if opts.CASecretName == "" {
		opts.CASecretName = "edgetwin-ca"
	}
	if len(opts.AdvertiseAddresses) == 0 {
		return nil, errors.New("at least one --advertise-address is needed: edge agents check it in the server certificate")
	}
	// The CA and tokens are read without the cache: cloudcore does not cache every Secret.
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	ca, err := pki.EnsureCA(ctx, direct, opts.Namespace, opts.CASecretName)
	if err != nil {
		return nil, err
	}
	serving, err := ca.ServerCertificate(opts.AdvertiseAddresses, 365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("issuing CloudHub's serving certificate: %w", err)
	}

	log := ctrl.Log.WithName("cloudhub")
	tracker := nodestatus.NewTracker(clock.RealClock{})
	var h *hub.Hub
	// Reports written after Apply returned are acknowledged through the hub.
	router := reports.NewRouter(log.WithName("reports"), metrics.Registry, func(node string, seq uint64) { h.Applied(node, seq) })
	writes := opts.StatusWrites
	writes.Registerer, writes.Log = metrics.Registry, ctrl.Log.WithName("device-reports")
	if writes.QPS <= 0 {
		writes.QPS, writes.Burst = controllers.DefaultStatusQPS, controllers.DefaultStatusBurst
	}
	// One budget for every status write made on the edge's behalf.
	writes.Limiter = rate.NewLimiter(rate.Limit(writes.QPS), writes.Burst)
	// Device status, the bulk of those writes, also yields to the API server's load. Node,
	// Lease and Pod writes do not: a Lease renewal is the node's proof of life.
	if opts.StatusWriteTargetLatency > 0 {
		writes.Governor = statuswrite.NewGovernor(statuswrite.GovernorOptions{Max: writes.QPS, Burst: writes.Burst,
			Target: opts.StatusWriteTargetLatency, Registerer: metrics.Registry, Name: "device_status_governor"})
		if err := mgr.Add(writes.Governor); err != nil {
			return nil, err
		}
	}
	deviceReports := controllers.NewDeviceReports(mgr.GetClient(), writes)
	router.Handle(wire.ReportKindDeviceTwin, deviceReports)
	router.Handle(wire.ReportKindDeviceState, deviceReports)
	if err := mgr.Add(deviceReports); err != nil {
		return nil, err
	}
	devices := &projection.Devices{Reader: mgr.GetClient()}
	projections := []hub.Projection{devices}
	var work *workloads.Projections
	if opts.Workloads {
		if work, err = setupWorkloads(ctx, mgr, opts, writes.Limiter, tracker, router); err != nil {
			return nil, err
		}
		projections = append(projections, work.Pods, work.ConfigMaps, work.Secrets, work.Tokens)
	}
	h, err = hub.New(hub.Config{
		Projections:  projections,
		Identify:     pki.NodeIdentity,
		Authorizer:   &edgeNodes{reader: mgr.GetClient()},
		Status:       tracker,
		Reports:      router,
		PingInterval: opts.PingInterval, PongWait: opts.PongWait,
		Registerer: metrics.Registry,
		Log:        log,
	})
	if err != nil {
		return nil, err
	}
	if err := devices.WatchDevices(ctx, mgr.GetCache(), h); err != nil {
		return nil, err
	}
	if work != nil {
		if err := work.Watch(ctx, mgr.GetCache(), h, 10*time.Second); err != nil {
			return nil, err
		}
		if err := (&workloads.Terminator{Client: mgr.GetClient(), Hub: h}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up Pod termination: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle(hub.ConnectPath, h)
	mux.Handle(join.Path, &join.Handler{Client: direct, Namespace: opts.Namespace, CA: ca,
		CertificateValidity: opts.CertificateValidity})
	// Renewal asks CloudHub's question (may this node connect?) of the certificate it presents.
	mux.Handle(renew.Path, &renew.Handler{CA: ca, Authorizer: &edgeNodes{reader: mgr.GetClient()},
		CertificateValidity: opts.CertificateValidity})
	l, err := net.Listen("tcp", opts.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.BindAddress, err)
	}
	e := &Endpoint{Hub: h, Tracker: tracker, Reports: router, CA: ca, DeviceStatus: deviceReports, listener: l,
		server: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.VerifyClientCertIfGiven,
				ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		go tracker.Run(ctx.Done())
		return e.serve(ctx)
	})); err != nil {
		_ = l.Close()
		return nil, err
	}
	return e, nil
}

// setupWorkloads wires what running Pods on edge nodes takes on the cloud side: the Node
// objects with their Leases, the Pod status writer, the projections' indexes and, if asked, the
// autonomy policy. All of their writes share limiter.
func setupWorkloads(ctx context.Context, mgr manager.Manager, opts Options, limiter *rate.Limiter,
	tracker *nodestatus.Tracker, router *reports.Router) (*workloads.Projections, error) {
	nodeOpts := opts.Nodes
	nodeOpts.Limiter = limiter
	nodeOpts.Registerer, nodeOpts.Log = metrics.Registry, ctrl.Log.WithName("edge-nodes")
	presence := nodes.New(mgr.GetClient(), tracker, nodeOpts)
	if err := presence.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	router.Handle(wire.ReportKindNodeStatus, presence)

	podStatus := workloads.NewPodStatuses(mgr.GetClient(), statuswrite.Options{Limiter: limiter, Interval: time.Second,
		Workers: 8, Registerer: metrics.Registry, Log: ctrl.Log.WithName("pod-status")})
	if err := mgr.Add(podStatus.Writer()); err != nil {
		return nil, err
	}
	router.Handle(wire.ReportKindPodStatus, podStatus)

	if err := workloads.Index(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if opts.EdgeAutonomy {
		log := ctrl.Log.WithName("edge-autonomy")
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			if err := autonomy.Ensure(ctx, mgr.GetClient(), nodes.TaintKey); err != nil {
				// Not fatal: devices and Pods still work; only the outage guarantee is missing.
				log.Error(err, "The edge autonomy policy is not installed: a link outage longer than the Pods' "+
					"toleration (300 s by default) gets edge Pods evicted. It needs MutatingAdmissionPolicy "+
					"(Kubernetes 1.36 or later) and RBAC to create it; or give edge Pods unreachable and not-ready "+
					"NoExecute tolerations without tolerationSeconds yourself")
				return nil
			}
			log.Info("Edge autonomy policy installed", "policy", autonomy.PolicyName)
			return nil
		})); err != nil {
			return nil, err
		}
	}
	return workloads.NewProjections(mgr.GetClient()), nil
}

// serve runs the TLS server until ctx ends, then closes the listener and every session.
func (e *Endpoint) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- e.server.ServeTLS(e.listener, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("CloudHub's server stopped: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.server.Shutdown(shutdown) // stops accepting; hijacked websockets are closed next
	e.Hub.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// edgeNodes is the hub's Authorizer: a certificate is good while its EdgeNode exists, is not
// being deleted, and is the incarnation the certificate was issued for.
type edgeNodes struct{ reader client.Reader }

func (a *edgeNodes) Authorize(ctx context.Context, name, uid string) error {
	node := &v1alpha1.EdgeNode{}
	if err := a.reader.Get(ctx, types.NamespacedName{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("EdgeNode %s does not exist", name)
		}
		return fmt.Errorf("looking up EdgeNode %s: %w", name, err)
	}
	switch {
	case node.DeletionTimestamp != nil:
		return fmt.Errorf("EdgeNode %s is being deleted", name)
	case string(node.UID) != uid:
		return fmt.Errorf("the certificate was issued for an earlier EdgeNode %s; join the node again with a new token", name)
	}
	return nil
}
