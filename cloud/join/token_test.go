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

package join_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
)

var (
	parseToken = join.ParseToken
	secretName = join.SecretName
)

// createToken makes a token for node valid for an hour.
func createToken(t *testing.T, ns, node string) string {
	t.Helper()
	token, err := join.Create(context.Background(), k8s, ns, node, time.Hour, testCA)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return token
}

func TestCreateStoresOnlyAHashOfTheSecretAndCreatesTheEdgeNode(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	before := time.Now()
	token := createToken(t, ns, ns)

	tok, err := join.ParseToken(token)
	if err != nil {
		t.Fatalf("Create returned a token ParseToken refuses: %v", err)
	}
	if tok.CAHash != testCA.Hash() {
		t.Errorf("the token pins %s, want the CA's %s", tok.CAHash, testCA.Hash())
	}
	if tok.String() != token {
		t.Errorf("String() = %q, want %q", tok.String(), token)
	}
	var secret corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edgetwin-token-" + tok.ID}, &secret); err != nil {
		t.Fatalf("the token Secret is not stored: %v", err)
	}
	if secret.Type != join.SecretType || secret.Labels[join.TokenLabel] != "true" {
		t.Errorf("Secret type %q labels %v", secret.Type, secret.Labels)
	}
	sum := sha256.Sum256([]byte(tok.Secret))
	if got := string(secret.Data[join.SecretKeySecretHash]); got != hex.EncodeToString(sum[:]) {
		t.Errorf("%s = %q, want the hex SHA-256 of the secret", join.SecretKeySecretHash, got)
	}
	for key, value := range secret.Data {
		if strings.Contains(string(value), tok.Secret) {
			t.Errorf("Secret key %s holds the token's secret in clear", key)
		}
	}
	if got := string(secret.Data[join.SecretKeyNodeName]); got != ns {
		t.Errorf("%s = %q, want %q", join.SecretKeyNodeName, got, ns)
	}
	expiry, err := time.Parse(time.RFC3339, string(secret.Data[join.SecretKeyExpiration]))
	if err != nil {
		t.Fatalf("%s is not RFC 3339: %v", join.SecretKeyExpiration, err)
	}
	if expiry.Before(before.Add(time.Hour).Add(-time.Second)) || expiry.After(time.Now().Add(time.Hour)) {
		t.Errorf("expiry %s is not an hour from now", expiry)
	}
	node := getEdgeNode(t, ns)
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != node.UID {
		t.Errorf("OwnerReferences = %v, want the EdgeNode %s", secret.OwnerReferences, node.UID)
	}
}

func TestCreateKeepsAnExistingEdgeNode(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	existing := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: v1alpha1.EdgeNodeSpec{Labels: map[string]string{"site": "plant-3"}}}
	if err := k8s.Create(ctx, existing); err != nil {
		t.Fatal(err)
	}
	createToken(t, ns, ns)
	node := getEdgeNode(t, ns)
	if node.UID != existing.UID || node.Spec.Labels["site"] != "plant-3" {
		t.Errorf("the EdgeNode was replaced or changed: %+v", node)
	}
}

func TestCreateRefusals(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name string
		node string
		ttl  time.Duration
		want error
	}{
		{name: "a node name with upper case is refused", node: "Edge-7", ttl: time.Hour, want: join.ErrInvalidNodeName},
		{name: "a node name with a dot is refused", node: "edge.7", ttl: time.Hour, want: join.ErrInvalidNodeName},
		{name: "an empty node name is refused", ttl: time.Hour, want: join.ErrInvalidNodeName},
		{name: "a zero lifetime is refused", node: ns},
		{name: "a negative lifetime is refused", node: ns, ttl: -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := join.Create(context.Background(), k8s, ns, tt.node, tt.ttl, testCA)
			if err == nil {
				t.Fatalf("Create made token %q", token)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	var secrets corev1.SecretList
	if err := k8s.List(context.Background(), &secrets, client.InNamespace(ns), client.HasLabels{join.TokenLabel}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 0 {
		t.Errorf("refused Creates stored %d tokens", len(secrets.Items))
	}
}

func TestConsumeAcceptsAFreshTokenOnce(t *testing.T) {
	ns := newNamespace(t)
	token := createToken(t, ns, ns)
	node, err := join.Consume(context.Background(), k8s, ns, token, ns, time.Now())
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if want := getEdgeNode(t, ns); node.Name != ns || node.UID != want.UID {
		t.Errorf("Consume returned EdgeNode %s/%s, want %s/%s", node.Name, node.UID, ns, want.UID)
	}
	if tokenSecretExists(t, ns, token) {
		t.Error("the token Secret is still there after use")
	}
	if _, err := join.Consume(context.Background(), k8s, ns, token, ns, time.Now()); !errors.Is(err, join.ErrUnknownToken) {
		t.Errorf("reusing the token: error = %v, want ErrUnknownToken", err)
	}
}

func TestConsumeRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// present returns the token and node name to present, given a fresh token for node.
		present   func(t *testing.T, ns, token string) (string, string)
		now       time.Duration // offset from now
		want      error
		keepToken bool // whether the token must still be usable afterwards
	}{
		{name: "a wrong secret is refused and the token stays", want: join.ErrWrongSecret, keepToken: true,
			present: func(t *testing.T, ns, token string) (string, string) {
				tok, err := join.ParseToken(token)
				if err != nil {
					t.Fatal(err)
				}
				tok.Secret = strings.Repeat("a", 26)
				return tok.String(), ns
			}},
		{name: "a token presented by another node is refused and the token stays", want: join.ErrOtherNode, keepToken: true,
			present: func(t *testing.T, ns, token string) (string, string) {
				other := ns + "-other"
				if err := k8s.Create(ctx, &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: other}}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = k8s.Delete(ctx, &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: other}}) })
				return token, other
			}},
		{name: "an expired token is refused and deleted", want: join.ErrExpiredToken, now: time.Hour + time.Second,
			present: func(_ *testing.T, ns, token string) (string, string) { return token, ns }},
		{name: "a token at the moment it expires is refused", want: join.ErrExpiredToken, now: time.Hour,
			present: func(_ *testing.T, ns, token string) (string, string) { return token, ns }},
		{name: "a token whose EdgeNode was deleted is refused and the token stays", want: join.ErrEdgeNodeMissing, keepToken: true,
			present: func(t *testing.T, ns, token string) (string, string) {
				if err := k8s.Delete(ctx, &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
					t.Fatal(err)
				}
				return token, ns
			}},
		{name: "a token with an unknown id is refused", want: join.ErrUnknownToken, keepToken: true,
			present: func(t *testing.T, ns, token string) (string, string) {
				tok, err := join.ParseToken(token)
				if err != nil {
					t.Fatal(err)
				}
				tok.ID = "zzzzzz"
				return tok.String(), ns
			}},
		{name: "a token with two parts is malformed", want: join.ErrMalformedToken, keepToken: true,
			present: func(_ *testing.T, ns, token string) (string, string) {
				return token[:strings.LastIndex(token, ".")], ns
			}},
		{name: "a token with trailing space is malformed", want: join.ErrMalformedToken, keepToken: true,
			present: func(_ *testing.T, ns, token string) (string, string) { return token + " ", ns }},
		{name: "an upper-case token is malformed", want: join.ErrMalformedToken, keepToken: true,
			present: func(_ *testing.T, ns, token string) (string, string) { return strings.ToUpper(token), ns }},
		{name: "an empty token is malformed", want: join.ErrMalformedToken, keepToken: true,
			present: func(_ *testing.T, ns, _ string) (string, string) { return "", ns }},
		{name: "a node name that is not a DNS label is refused", want: join.ErrInvalidNodeName, keepToken: true,
			present: func(_ *testing.T, _, token string) (string, string) { return token, "../edge" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			token := createToken(t, ns, ns)
			presented, node := tt.present(t, ns, token)
			got, err := join.Consume(ctx, k8s, ns, presented, node, time.Now().Add(tt.now))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Consume = %v, %v; want error %v", got, err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error quotes the token: %v", err)
			}
			if exists := tokenSecretExists(t, ns, token); exists != tt.keepToken {
				t.Errorf("token Secret exists = %v, want %v", exists, tt.keepToken)
			}
		})
	}
}

func TestConcurrentConsumesOfOneTokenLetExactlyOneJoin(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const rounds, joiners = 20, 4
	for round := range rounds {
		token := createToken(t, ns, ns)
		errs := make([]error, joiners)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range joiners {
			wg.Go(func() {
				<-start
				_, errs[i] = join.Consume(ctx, k8s, ns, token, ns, time.Now())
			})
		}
		close(start)
		wg.Wait()
		succeeded := 0
		for _, err := range errs {
			switch {
			case err == nil:
				succeeded++
			case !errors.Is(err, join.ErrUnknownToken):
				t.Errorf("round %d: a losing join got %v, want ErrUnknownToken", round, err)
			}
		}
		if succeeded != 1 {
			t.Fatalf("round %d: %d of %d concurrent joins succeeded with one token, want exactly 1", round, succeeded, joiners)
		}
	}
}

func TestParseTokenRoundTrips(t *testing.T) {
	pin := strings.TrimPrefix(testCA.Hash(), pki.CAHashPrefix)
	s := "k3d9qa.n4w2x7c5v3b6m7k2j4h6g2f3d5." + pin
	tok, err := join.ParseToken(s)
	if err != nil {
		t.Fatalf("ParseToken: %v", err)
	}
	if tok.ID != "k3d9qa" || tok.Secret != "n4w2x7c5v3b6m7k2j4h6g2f3d5" || tok.CAHash != testCA.Hash() || tok.String() != s {
		t.Errorf("ParseToken(%q) = %+v", s, tok)
	}
}
