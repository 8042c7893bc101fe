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

package workloads

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// defaultTokenSeconds is what Kubernetes' kube-api-access volume asks for.
const defaultTokenSeconds = 3607

// Tokens projects one service account token per Pod that mounts one, obtained through the
// TokenRequest API and bound to the Pod, so the token dies with the Pod. Tokens are kept in
// memory and renewed once 80% of their lifetime has passed; the edge keeps the newest it received,
// so a Pod restarted while the cloud is unreachable still gets one that is valid until it expires.
//
// The API server extends kube-api-access tokens (3607 s) to a year unless
// --service-account-extend-token-expiration=false, which is what lets an edge node stay offline
// for long; with that flag off, a node offline longer than the token's hour runs Pods whose
// token has expired.
type Tokens struct {
	// Client reads Pods (from the cache) and creates TokenRequests.
	Client client.Client
	// Clock defaults to the real clock.
	Clock clock.PassiveClock

	mu     sync.Mutex
	tokens map[types.UID]*issued
}

// issued is a token kept for a Pod.
type issued struct {
	node    string
	ref     wire.ObjectRef
	object  hub.Object
	renewAt time.Time
}

var _ hub.Projection = (*Tokens)(nil)

// Kind implements hub.Projection.
func (t *Tokens) Kind() wire.Kind { return wire.KindServiceAccountToken }

// List implements hub.Projection.
func (t *Tokens) List(ctx context.Context, node string) ([]hub.Object, error) {
	pods, err := podsOn(ctx, t.Client, node)
	if err != nil {
		return nil, err
	}
	var out []hub.Object
	for _, pod := range pods {
		o, ok, err := t.token(ctx, node, pod)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// Get implements hub.Projection.
func (t *Tokens) Get(ctx context.Context, node string, ref wire.ObjectRef) (hub.Object, bool, error) {
	pod, err := podFor(ctx, t.Client, node, ref)
	if pod == nil || err != nil {
		return hub.Object{}, false, err
	}
	return t.token(ctx, node, pod)
}

// token returns the Pod's kept token, requesting one when there is none or it is due renewal.
func (t *Tokens) token(ctx context.Context, node string, pod *corev1.Pod) (hub.Object, bool, error) {
	src := tokenSource(pod)
	if src == nil {
		return hub.Object{}, false, nil
	}
	now := t.now()
	t.mu.Lock()
	if t.tokens == nil {
		t.tokens = map[types.UID]*issued{}
	}
	kept, ok := t.tokens[pod.UID]
	t.mu.Unlock()
	if ok && now.Before(kept.renewAt) {
		return kept.object, true, nil
	}

	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	seconds := ptr.Deref(src.ExpirationSeconds, defaultTokenSeconds)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: new(seconds),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: sa}}
	if err := t.Client.SubResource("token").Create(ctx, account, tr); err != nil {
		if apierrors.IsNotFound(err) {
			// No such service account (yet): the Pod waits for its token at the edge.
			return hub.Object{}, false, nil
		}
		return hub.Object{}, false, fmt.Errorf("requesting a token for Pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	body := &wire.ServiceAccountToken{PodUID: string(pod.UID), ServiceAccount: sa, Audiences: tr.Spec.Audiences,
		Token: tr.Status.Token, ExpirationTimestamp: tr.Status.ExpirationTimestamp.UTC()}
	o, err := hub.NewObject(wire.KindServiceAccountToken, pod.Namespace, pod.Name, body)
	if err != nil {
		return hub.Object{}, false, err
	}
	lifetime := tr.Status.ExpirationTimestamp.Sub(now)
	t.mu.Lock()
	t.tokens[pod.UID] = &issued{node: node, ref: wire.ObjectRef{Kind: wire.KindServiceAccountToken, Namespace: pod.Namespace, Name: pod.Name},
		object: o, renewAt: now.Add(lifetime * 8 / 10)}
	t.mu.Unlock()
	return o, true, nil
}

func (t *Tokens) now() time.Time {
	if t.Clock == nil {
		return time.Now()
	}
	return t.Clock.Now()
}

// forget drops a Pod's token (the Pod is gone or moved).
func (t *Tokens) forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tokens, uid)
}

// due returns the kept tokens that need renewing, and forgets them so the next Get requests new
// ones.
func (t *Tokens) due() []*issued {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*issued
	for uid, k := range t.tokens {
		if !now.Before(k.renewAt) {
			out = append(out, k)
			delete(t.tokens, uid)
		}
	}
	return out
}

// Renew tells n about every token due renewal, every interval until ctx ends; the hub then gets
// (and so requests) the new token and sends it.
func (t *Tokens) Renew(ctx context.Context, n Notifier, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, k := range t.due() {
			n.Changed(ctx, k.node, k.ref)
		}
	}
}
