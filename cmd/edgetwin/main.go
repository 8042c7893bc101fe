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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2

	defaultNamespace = "edgetwin-system"
	defaultTTL       = time.Hour
	// serverPlaceholder stands in the printed join line when --server is not given.
	serverPlaceholder = "https://<cloudcore-address>"
	edgecoreDataDir   = "/var/lib/edgecore"
)

const usage = `Usage:
  edgetwin token create NODE [flags]   make a join token for the edge node NODE
  edgetwin dev [flags]                 run edgetwin on this machine, with simulated devices

Run 'edgetwin token create -h' or 'edgetwin dev -h' for the flags.
`

// tokenCreateOptions is what 'edgetwin token create' was asked to do.
type tokenCreateOptions struct {
	node       string
	ttl        time.Duration
	namespace  string
	kubeconfig string
	server     string // normalized to https://host[:port], or empty
	caSecret   string
}

// tokenCreator does the work of 'token create'; tests replace it to check the parsing alone.
type tokenCreator func(ctx context.Context, o tokenCreateOptions) (string, error)

// errUsage marks errors in what the user typed, which exit with code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, createToken)
	stop()
	os.Exit(code)
}

// run runs the command in args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, create tokenCreator) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch {
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		_, _ = fmt.Fprint(stdout, usage)
		return exitOK
	case args[0] == "token" && len(args) > 1 && args[1] == "create":
		return tokenCreate(ctx, args[2:], stdout, stderr, create)
	case args[0] == "dev":
		return dev(ctx, args[1:], stdout, stderr)
	default:
		_, _ = fmt.Fprintf(stderr, "edgetwin: unknown command %q\n%s", strings.Join(args[:min(len(args), 2)], " "), usage)
		return exitUsage
	}
}

func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer, create tokenCreator) int {
	o, err := parseTokenCreate(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "edgetwin token create: %v\nRun 'edgetwin token create -h' for help.\n", err)
		return exitUsage
	}
	token, err := create(ctx, o)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "edgetwin token create: %v\n", err)
		if errors.Is(err, join.ErrInvalidNodeName) {
			return exitUsage
		}
		return exitFailure
	}
	server := o.server
	if server == "" {
		server = serverPlaceholder
		_, _ = fmt.Fprintf(stderr, "No --server given: replace %s with the address edge nodes reach cloudcore at.\n", serverPlaceholder)
	}
	_, _ = fmt.Fprintf(stderr, "Join token for node %s (valid for %s, usable once), then the command to run on the edge machine:\n",
		o.node, o.ttl)
	// The token is shown once and nowhere stored in clear: a failed write is a failed command.
	if _, err := fmt.Fprintf(stdout, "%s\nedgecore join --server %s --token %s --name %s --data-dir %s\n",
		token, server, token, o.node, edgecoreDataDir); err != nil {
		_, _ = fmt.Fprintf(stderr, "edgetwin token create: printing the token: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseTokenCreate parses 'token create' arguments. Flags may come before or after NODE, as in
// 'edgetwin token create edge-7 --ttl 1h', which the flag package alone does not allow.
func parseTokenCreate(args []string, helpOut io.Writer) (tokenCreateOptions, error) {
	o := tokenCreateOptions{}
	fs := flag.NewFlagSet("edgetwin token create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.DurationVar(&o.ttl, "ttl", defaultTTL, "How long the token is valid, for example 30m or 24h.")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace, "cloudcore's namespace, which holds the CA and the tokens.")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Unset: $KUBECONFIG, then ~/.kube/config.")
	fs.StringVar(&o.server, "server", "", "cloudcore's join address as edge nodes reach it, HOST[:PORT] or https://HOST[:PORT]; "+
		"only printed in the edgecore join line.")
	fs.StringVar(&o.caSecret, "ca-secret", pki.DefaultCASecretName, "Name of the Secret holding the edgetwin CA.")
	// The flag package calls Usage on every parse error too; help is printed only when asked.
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				_, _ = fmt.Fprint(helpOut, "Usage: edgetwin token create NODE [flags]\n\n"+
					"Makes a join token bound to NODE, creating the EdgeNode (and the CA) when missing.\n\nFlags:\n")
				fs.SetOutput(helpOut)
				fs.PrintDefaults()
				return o, err
			}
			return o, fmt.Errorf("%w: %w", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	switch len(positional) {
	case 0:
		return o, fmt.Errorf("%w: the node name is missing", errUsage)
	case 1:
		o.node = positional[0]
	default:
		return o, fmt.Errorf("%w: one node name expected, got %q", errUsage, positional)
	}
	if err := join.ValidateNodeName(o.node); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if o.ttl <= 0 {
		return o, fmt.Errorf("%w: --ttl must be positive, got %s", errUsage, o.ttl)
	}
	if errs := validation.IsDNS1123Label(o.namespace); len(errs) > 0 {
		return o, fmt.Errorf("%w: --namespace %q: %s", errUsage, o.namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(o.caSecret); len(errs) > 0 {
		return o, fmt.Errorf("%w: --ca-secret %q: %s", errUsage, o.caSecret, strings.Join(errs, "; "))
	}
	if o.server != "" {
		server, err := normalizeServer(o.server)
		if err != nil {
			return o, fmt.Errorf("%w: --server: %w", errUsage, err)
		}
		o.server = server
	}
	return o, nil
}

// normalizeServer turns HOST, HOST:PORT or https://HOST[:PORT] into https://HOST[:PORT].
func normalizeServer(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("%q: the join endpoint is served over https only", s)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not HOST[:PORT] or https://HOST[:PORT]", s)
	}
	if net.ParseIP(u.Hostname()) == nil {
		if errs := validation.IsDNS1123Subdomain(u.Hostname()); len(errs) > 0 {
			return "", fmt.Errorf("%q: host %q: %s", s, u.Hostname(), strings.Join(errs, "; "))
		}
	}
	return "https://" + u.Host, nil
}

// createToken is the real tokenCreator: it talks to the API server with the user's kubeconfig.
func createToken(ctx context.Context, o tokenCreateOptions) (string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return "", fmt.Errorf("loading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return "", err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return "", fmt.Errorf("connecting to the API server: %w", err)
	}
	ca, err := pki.EnsureCA(ctx, c, o.namespace, o.caSecret)
	if err != nil {
		return "", err
	}
	return join.Create(ctx, c, o.namespace, o.node, o.ttl, ca)
}
