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

// Command cloudcore is edgetwin's cloud side: the Device, DeviceModel and EdgeNode controllers
// (and, as they land, CloudHub and the join service) in one controller-runtime manager.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/nodes"
	"github.com/edgetwin/edgetwin/cloud/server"
	"github.com/edgetwin/edgetwin/cloud/statuswrite"
	"github.com/edgetwin/edgetwin/controllers"
)

func main() {
	if err := run(ctrl.SetupSignalHandler(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cloudcore:", err)
		os.Exit(1)
	}
}

// options are cloudcore's command-line settings.
type options struct {
	kubeconfig        string
	metricsAddr       string
	secureMetrics     bool
	probeAddr         string
	pprofAddr         string
	leaderElect       bool
	leaderElectionNS  string
	hub               server.Options
	heartbeatInterval time.Duration
	cleanupTimeout    time.Duration
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

func parseFlags(args []string, out io.Writer) (*options, *zap.Options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cloudcore", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "",
		"Path to a kubeconfig. Unset: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the /metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve /metrics over HTTPS with Kubernetes authentication and authorization; false serves plain HTTP.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address of Go's /debug/pprof endpoints, for profiling; \"0\" (the default) turns them off.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Hold a Lease so that only one cloudcore replica is active.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader-election Lease; unset means cloudcore's own namespace.")
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "edgetwin-system"
	}
	fs.StringVar(&o.hub.BindAddress, "hub-bind-address", ":10350",
		"Address of CloudHub's TLS port (edge websockets and joins); \"0\" runs the controllers without CloudHub.")
	advertise := (*stringList)(&o.hub.AdvertiseAddresses)
	fs.Var(advertise, "advertise-address",
		"An address (IP or DNS name) edge agents use to reach CloudHub; repeatable. They become the serving certificate's SANs.")
	fs.StringVar(&o.hub.Namespace, "namespace", namespace,
		"Namespace of the CA Secret and the join-token Secrets (default: $POD_NAMESPACE, else edgetwin-system).")
	fs.DurationVar(&o.hub.CertificateValidity, "node-certificate-validity", 30*24*time.Hour,
		"How long the certificates issued to edge nodes last; edgecore renews them before they expire.")
	fs.DurationVar(&o.hub.PingInterval, "hub-ping-interval", 20*time.Second, "How often CloudHub pings each edge node.")
	fs.DurationVar(&o.hub.PongWait, "hub-pong-wait", 60*time.Second,
		"How long CloudHub waits for any message or pong from an edge node before closing its session.")
	fs.DurationVar(&o.heartbeatInterval, "heartbeat-interval", 2*time.Minute,
		"How often a connected EdgeNode's status.lastHeartbeatTime is rewritten.")
	fs.DurationVar(&o.hub.StatusWrites.Interval, "device-status-interval", controllers.DefaultStatusInterval,
		"The least time between two status writes of one device: its reports in between are coalesced, the newest value wins.")
	fs.Float64Var(&o.hub.StatusWrites.QPS, "status-write-qps", controllers.DefaultStatusQPS,
		"The budget of status writes per second made for edge nodes, all together: Device, Node and Pod status and node Leases.")
	fs.IntVar(&o.hub.StatusWrites.Burst, "status-write-burst", controllers.DefaultStatusBurst,
		"How many status writes may go at once above --status-write-qps.")
	fs.DurationVar(&o.hub.StatusWriteTargetLatency, "status-write-target-latency", statuswrite.DefaultTargetLatency,
		"Device status writes slow down (to a twentieth of --status-write-qps at least) while the API server takes longer "+
			"than this to answer them, and speed up again when it is fast, so users' own requests come first; 0 keeps the budget fixed.")
	fs.BoolVar(&o.hub.Workloads, "edge-workloads", true,
		"Run Pods on edge nodes: keep a Node per EdgeNode and send each node its Pods, ConfigMaps, Secrets and tokens. "+
			"Off, cloudcore caches no Pods, ConfigMaps or Secrets.")
	fs.BoolVar(&o.hub.EdgeAutonomy, "edge-autonomy", true,
		"Install the MutatingAdmissionPolicy that keeps a link outage from evicting Pods that tolerate the edge taint.")
	fs.DurationVar(&o.hub.Nodes.LeaseInterval, "node-lease-interval", nodes.DefaultLeaseInterval,
		"How often a connected edge node's Lease is renewed; stretched when the fleet would otherwise take more than half of --status-write-qps.")
	fs.DurationVar(&o.hub.Nodes.GracePeriod, "node-monitor-grace-period", nodes.DefaultGracePeriod,
		"kube-controller-manager's --node-monitor-grace-period, so cloudcore can warn when Lease renewals must come slower than it.")
	fs.DurationVar(&o.cleanupTimeout, "device-cleanup-timeout", controllers.DefaultEdgeCleanupTimeout,
		"How long a deleted device waits for its connected edge node to confirm removing it; an offline node never holds deletion.")
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.hub.StatusWrites.Interval <= 0:
		return nil, nil, errors.New("--device-status-interval must be positive")
	case o.hub.StatusWrites.QPS <= 0 || o.hub.StatusWrites.Burst <= 0:
		return nil, nil, errors.New("--status-write-qps and --status-write-burst must be positive")
	case o.hub.Nodes.LeaseInterval <= 0 || o.hub.Nodes.GracePeriod <= 0:
		return nil, nil, errors.New("--node-lease-interval and --node-monitor-grace-period must be positive")
	case o.hub.StatusWriteTargetLatency < 0:
		return nil, nil, errors.New("--status-write-target-latency must not be negative")
	case o.cleanupTimeout < 0:
		return nil, nil, errors.New("--device-cleanup-timeout must not be negative")
	}
	if o.hub.BindAddress != "0" && len(o.hub.AdvertiseAddresses) == 0 {
		return nil, nil, errors.New("--advertise-address is required when CloudHub runs (or turn it off with --hub-bind-address=0)")
	}
	return o, zapOpts, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	// As ctrl.GetConfig does: no client-side rate limit (client-go's default is 5/s), so that
	// cloudcore's own status-write budget is the limit, and API priority and fairness the guard.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = -1, -1
	}
	return cfg, nil
}

// run starts cloudcore and returns when ctx ends or the manager fails.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, zapOpts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts), zap.WriteTo(stderr)))
	log := ctrl.Log.WithName("setup")

	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		// HTTP/2 stays off: its rapid-reset and stream-cancellation flaws (CVE-2023-44487,
		// CVE-2023-39325) are not worth it for a metrics endpoint.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "cloudcore.edgetwin.dev",
		LeaderElectionNamespace: o.leaderElectionNS,
		// Node Leases live in one namespace; cloudcore need not watch anyone else's.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{nodes.LeaseNamespace: {}}},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ctrlOpts := controllers.Options{HeartbeatInterval: o.heartbeatInterval, EdgeCleanupTimeout: o.cleanupTimeout}
	if o.hub.BindAddress != "0" {
		endpoint, err := server.New(ctx, mgr, o.hub)
		if err != nil {
			return fmt.Errorf("setting up CloudHub: %w", err)
		}
		log.Info("CloudHub listening", "address", endpoint.Addr().String(), "advertised", o.hub.AdvertiseAddresses,
			"caHash", endpoint.CA.Hash())
		ctrlOpts.Sessions = endpoint.Sessions()
		ctrlOpts.DeviceStatus = endpoint.DeviceStatus
	}
	if err := controllers.SetupWithManager(ctx, mgr, ctrlOpts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	// Ready once the informer caches have synced, so a probe never admits a blind cloudcore.
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("informer caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	log.Info("Starting cloudcore")
	return mgr.Start(ctx)
}
