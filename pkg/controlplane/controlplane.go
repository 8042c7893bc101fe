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

// Package controlplane starts a real Kubernetes control plane (kube-apiserver and etcd, through
// controller-runtime's envtest) with edgetwin's CRDs installed, and when asked kube-scheduler and
// kube-controller-manager as child processes against it, so that Deployments, ReplicaSets and
// DaemonSets get pods made and bound to nodes. The tests, the e2e suite and 'edgetwin dev' use it.
//
// It never builds or downloads binaries: hack/build-control-plane.sh (run by 'make test')
// builds them into the user's cache directory, and Start fails with a clear error when they are
// missing.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/config/crd"
)

// KubernetesVersion is the version hack/build-control-plane.sh builds.
const KubernetesVersion = "1.37.2"

// ErrAssetsMissing is returned when a control-plane binary has not been built yet.
var ErrAssetsMissing = errors.New("control-plane binaries not found")

// AssetsDir returns where the control-plane binaries are: $KUBEBUILDER_ASSETS when set, otherwise
// the cache directory hack/build-control-plane.sh writes to.
func AssetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	if dir := os.Getenv("EDGETWIN_CACHE"); dir != "" {
		return filepath.Join(dir, "k8s", KubernetesVersion)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "edgetwin-cache")
	}
	return filepath.Join(cache, "edgetwin", "k8s", KubernetesVersion)
}

// ControlPlane is a running API server and etcd with edgetwin's CRDs installed, and the
// kube-scheduler and kube-controller-manager that Options asked for.
type ControlPlane struct {
	// Env is the envtest environment, for adding users.
	Env *envtest.Environment
	// Config is an admin client configuration.
	Config *rest.Config

	startTimeout time.Duration
	components   []*component // kube-controller-manager, kube-scheduler, in start order
	exited       chan error
}

// Options place a control plane's state; the zero value keeps everything in temporary
// directories that Stop removes.
type Options struct {
	// DataDir keeps etcd's data; a control plane started again on it has the same objects.
	DataDir string
	// CertDir holds the API server's certificates and keys. It must be empty: envtest makes
	// them on every start. The kubeconfigs of kube-scheduler and kube-controller-manager are
	// written there too.
	CertDir string

	// Scheduler runs kube-scheduler, so that pods are bound to nodes.
	Scheduler bool
	// ControllerManager runs kube-controller-manager: Deployments, ReplicaSets and DaemonSets
	// get their pods, every namespace its default ServiceAccount and kube-root-ca.crt
	// ConfigMap, and nodes that stop reporting are marked Unknown and tainted.
	ControllerManager bool
	// NodeMonitorGracePeriod is how long kube-controller-manager lets a node go without a
	// heartbeat before it marks the node Unknown (and, 300 s later by default, evicts its
	// pods); zero keeps Kubernetes' DefaultNodeMonitorGracePeriod. Large fleets of edge nodes
	// that renew their Leases slowly need more.
	NodeMonitorGracePeriod time.Duration
	// LogDir receives kube-scheduler.log and kube-controller-manager.log (appended to); empty
	// means the API server's certificate directory.
	LogDir string
}

// Start starts a control plane from the binaries in AssetsDir and installs the CRDs.
func Start() (*ControlPlane, error) { return StartWith(Options{}) }

// StartWith is Start with the state kept where opts say, and the components they ask for, each
// healthy when it returns. Directories given are kept by Stop.
func StartWith(opts Options) (*ControlPlane, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dir := AssetsDir()
	for _, bin := range opts.binaries() {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("%w: %s is not in %s; build it with 'make control-plane' "+
				"(or hack/build-control-plane.sh), or point KUBEBUILDER_ASSETS at a directory that has it",
				ErrAssetsMissing, bin, dir)
		}
	}
	crds, err := crd.CRDs()
	if err != nil {
		return nil, fmt.Errorf("loading the CRDs: %w", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDs:                     crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	for _, d := range []string{opts.DataDir, opts.CertDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
		}
	}
	if opts.DataDir != "" || opts.CertDir != "" {
		env.ControlPlane.Etcd = &envtest.Etcd{DataDir: opts.DataDir}
		env.ControlPlane.APIServer = &envtest.APIServer{CertDir: opts.CertDir}
	}
	if opts.ControllerManager {
		// envtest turns the ServiceAccount admission plugin off, because nothing would create the
		// service accounts it requires. With kube-controller-manager they exist, and Pods get
		// what they get in a real cluster: a service account and the projected kube-api-access
		// volume, which Edged must serve.
		if env.ControlPlane.APIServer == nil {
			env.ControlPlane.APIServer = &envtest.APIServer{}
		}
		env.ControlPlane.APIServer.Configure().Set("disable-admission-plugins", "")
	}
	cfg, err := env.Start()
	if err != nil {
		// envtest leaves the processes running when a later step (installing the CRDs) fails.
		if stopErr := env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the half-started control plane: %w", stopErr))
		}
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", dir, err)
	}
	cp := &ControlPlane{Env: env, Config: cfg, startTimeout: env.ControlPlaneStartTimeout, exited: make(chan error, 2)}
	if err := cp.startComponents(opts, dir); err != nil {
		if stopErr := cp.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the half-started control plane: %w", stopErr))
		}
		return nil, err
	}
	return cp, nil
}

// Exited reports kube-scheduler or kube-controller-manager ending on its own after StartWith
// returned, with the end of its log; Stop sends nothing there.
func (cp *ControlPlane) Exited() <-chan error { return cp.exited }

// Stop stops kube-scheduler and kube-controller-manager, then the API server and etcd, and
// removes their data unless Options placed it.
func (cp *ControlPlane) Stop() error {
	// The components first: the API server would otherwise wait for their watches to end.
	return errors.Join(cp.stopComponents(), cp.Env.Stop())
}

// WriteKubeconfig writes an admin kubeconfig (group system:masters) for this control plane to
// path, for kubectl and other programs.
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	user, err := cp.Env.AddUser(envtest.User{Name: "edgetwin-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// NewScheme returns a scheme with every type a test of edgetwin reads or writes: client-go's
// built-in kinds, apiextensions v1 (the CRDs themselves) and edgetwin's v1alpha1.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		v1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return scheme, nil
}

// Client returns an admin client for this control plane with the scheme of NewScheme, which
// Client().Scheme() returns for a manager to share. It reads from the API server directly, with
// no cache, so a test sees its own writes at once.
func (cp *ControlPlane) Client() (client.Client, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	return c, nil
}
