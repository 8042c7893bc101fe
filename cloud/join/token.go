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

package join

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
	"github.com/edgetwin/edgetwin/cloud/pki"
)

const (
	// SecretNamePrefix starts the name of every token Secret; the token's id follows it.
	SecretNamePrefix = "edgetwin-token-"
	// SecretType is the type of token Secrets, so that they are never mistaken for others.
	SecretType corev1.SecretType = "edgetwin.dev/join-token"
	// TokenLabel is set to "true" on every token Secret, for 'kubectl get secrets -l'.
	TokenLabel = "edgetwin.dev/token"

	// SecretKeyNodeName holds the name of the node the token is bound to.
	SecretKeyNodeName = "node-name"
	// SecretKeyExpiration holds when the token expires, in RFC 3339.
	SecretKeyExpiration = "expiration"
	// SecretKeySecretHash holds the lower-case hex SHA-256 of the token's secret. A plain hash
	// is enough because the secret has 130 random bits: there is nothing to brute-force.
	SecretKeySecretHash = "token-secret-sha256"

	idLength     = 6
	secretLength = 26
)

var tokenPattern = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z2-7]{26})\.([0-9a-f]{64})$`)

// The errors Consume returns; each is a distinct refusal the join endpoint reports by reason.
var (
	// ErrMalformedToken: the token does not have the <id>.<secret>.<ca-pin> shape.
	ErrMalformedToken = errors.New("malformed join token")
	// ErrUnknownToken: no token has this id; it never existed, was used, or was deleted.
	ErrUnknownToken = errors.New("unknown or already used join token")
	// ErrWrongSecret: a token with this id exists but its secret is another.
	ErrWrongSecret = errors.New("wrong join token secret")
	// ErrOtherNode: the token is bound to another node name.
	ErrOtherNode = errors.New("join token is bound to another node")
	// ErrExpiredToken: the token has expired; Consume deleted it.
	ErrExpiredToken = errors.New("join token has expired")
	// ErrEdgeNodeMissing: the EdgeNode the token is for does not exist (any more) or is being
	// deleted; the token is left unused.
	ErrEdgeNodeMissing = errors.New("edge node does not exist")
	// ErrInvalidNodeName: the node name is not a DNS label, which EdgeNode names must be.
	ErrInvalidNodeName = errors.New("invalid node name")
)

// Token is a parsed join token.
type Token struct {
	// ID names the token's Secret.
	ID string
	// Secret proves that the holder was given the token.
	Secret string
	// CAHash is the CA pin in pki.CAHash's form, "sha256:<hex>".
	CAHash string
}

// ParseToken parses a token of the form <id>.<secret>.<ca-pin>. Errors wrap ErrMalformedToken
// and never quote the token, which is a credential.
func ParseToken(s string) (Token, error) {
	m := tokenPattern.FindStringSubmatch(s)
	if m == nil {
		return Token{}, fmt.Errorf("%w: want <6 characters [a-z0-9]>.<26 characters [a-z2-7]>.<64 hex digits>", ErrMalformedToken)
	}
	return Token{ID: m[1], Secret: m[2], CAHash: pki.CAHashPrefix + m[3]}, nil
}

// String returns the token as a user passes it to 'edgecore join'.
func (t Token) String() string {
	return t.ID + "." + t.Secret + "." + strings.TrimPrefix(t.CAHash, pki.CAHashPrefix)
}

// SecretName returns the name of the Secret that stores the token with this id.
func SecretName(id string) string { return SecretNamePrefix + id }

// ValidateNodeName checks that name can name an EdgeNode (a DNS label): it becomes a
// certificate CN and an MQTT topic segment. Errors wrap ErrInvalidNodeName.
func ValidateNodeName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidNodeName, name, strings.Join(errs, "; "))
	}
	return nil
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// newToken draws a fresh id and secret. crypto/rand.Text gives 26 base32 characters, at least
// 128 bits; lower case keeps the token easy to type and the id a valid name segment.
func newToken(ca *pki.CA) Token {
	return Token{
		ID:     strings.ToLower(rand.Text()[:idLength]),
		Secret: strings.ToLower(rand.Text()[:secretLength]),
		CAHash: ca.Hash(),
	}
}

// Create makes a join token for nodeName, valid for ttl, and stores it (hashed) in a Secret in
// namespace. It creates the EdgeNode when it does not exist yet, so that creating a token is all
// a user has to do before 'edgecore join'. It is meant for administrators ('edgetwin token
// create'), who run it with their own credentials; cloudcore never creates tokens.
func Create(ctx context.Context, c client.Client, namespace, nodeName string, ttl time.Duration, ca *pki.CA) (string, error) {
	if err := ValidateNodeName(nodeName); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime must be positive, got %s", ttl)
	}
	if ca == nil {
		return "", errors.New("a CA is needed to pin it in the token")
	}
	node, err := ensureEdgeNode(ctx, c, nodeName)
	if err != nil {
		return "", err
	}
	expiration := time.Now().Add(ttl).UTC().Truncate(time.Second)
	// The id has 30 random bits, so a clash with a live token is rare but possible; the API
	// server tells us (AlreadyExists) and we draw again.
	const attempts = 5
	for range attempts {
		tok := newToken(ca)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace,
				Name:      SecretName(tok.ID),
				Labels:    map[string]string{TokenLabel: "true"},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: v1alpha1.SchemeGroupVersion.String(),
					Kind:       "EdgeNode",
					Name:       node.Name,
					UID:        node.UID,
				}},
			},
			Type: SecretType,
			Data: map[string][]byte{
				SecretKeyNodeName:   []byte(nodeName),
				SecretKeyExpiration: []byte(expiration.Format(time.RFC3339)),
				SecretKeySecretHash: []byte(hex.EncodeToString(hashSecret(tok.Secret))),
			},
		}
		err := c.Create(ctx, secret)
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("storing the join token for node %s in namespace %s: %w", nodeName, namespace, err)
		}
		return tok.String(), nil
	}
	return "", fmt.Errorf("storing the join token for node %s: %d token ids in a row were taken", nodeName, attempts)
}

func ensureEdgeNode(ctx context.Context, c client.Client, nodeName string) (*v1alpha1.EdgeNode, error) {
	node := &v1alpha1.EdgeNode{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	err := c.Create(ctx, node)
	if err == nil {
		return node, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating EdgeNode %s: %w", nodeName, err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: nodeName}, node); err != nil {
		return nil, fmt.Errorf("reading EdgeNode %s: %w", nodeName, err)
	}
	if node.DeletionTimestamp != nil {
		return nil, fmt.Errorf("%w: EdgeNode %s is being deleted", ErrEdgeNodeMissing, nodeName)
	}
	return node, nil
}

// Token Secrets live in cloudcore's namespace, hence a Role; the EdgeNode is cluster-scoped.
// +kubebuilder:rbac:groups="",namespace=edgetwin-system,resources=secrets,verbs=get;delete
// +kubebuilder:rbac:groups=edgetwin.dev,resources=edgenodes,verbs=get

// Consume checks a join token presented by nodeName at time now and uses it up, returning the
// node's EdgeNode (its UID goes in the node's certificate). The checks, in order: the token's
// shape (ErrMalformedToken), that its Secret exists (ErrUnknownToken), the secret, compared in
// constant time (ErrWrongSecret), the expiry (ErrExpiredToken; the Secret is deleted), the node
// binding (ErrOtherNode) and the EdgeNode (ErrEdgeNodeMissing; the token stays usable). Last it
// deletes the Secret on the condition that it is still the one it read, so that of two
// concurrent joins with one token exactly one gets past this point; the other gets
// ErrUnknownToken.
func Consume(ctx context.Context, c client.Client, namespace, token, nodeName string, now time.Time) (*v1alpha1.EdgeNode, error) {
	tok, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	if err := ValidateNodeName(nodeName); err != nil {
		return nil, err
	}
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SecretName(tok.ID)}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: token %s", ErrUnknownToken, tok.ID)
		}
		return nil, fmt.Errorf("reading join token %s: %w", tok.ID, err)
	}
	if secret.Type != SecretType || secret.Labels[TokenLabel] != "true" {
		return nil, fmt.Errorf("%w: Secret %s is not a join token", ErrUnknownToken, secret.Name)
	}
	stored, err := hex.DecodeString(string(secret.Data[SecretKeySecretHash]))
	if err != nil || len(stored) != sha256.Size {
		return nil, fmt.Errorf("%w: token %s has no valid %s", ErrUnknownToken, tok.ID, SecretKeySecretHash)
	}
	if subtle.ConstantTimeCompare(hashSecret(tok.Secret), stored) != 1 {
		return nil, fmt.Errorf("%w: token %s", ErrWrongSecret, tok.ID)
	}
	expiration, err := time.Parse(time.RFC3339, string(secret.Data[SecretKeyExpiration]))
	if err != nil {
		return nil, fmt.Errorf("%w: token %s has no valid %s: %w", ErrUnknownToken, tok.ID, SecretKeyExpiration, err)
	}
	if !now.Before(expiration) {
		// Nobody can use it any more; clean it up now rather than leave it for a sweeper.
		// A failure here changes nothing for the caller, who is refused either way.
		_ = deleteExactly(ctx, c, &secret)
		return nil, fmt.Errorf("%w: token %s expired at %s", ErrExpiredToken, tok.ID, expiration.Format(time.RFC3339))
	}
	if bound := string(secret.Data[SecretKeyNodeName]); bound != nodeName {
		return nil, fmt.Errorf("%w: token %s is not for node %s", ErrOtherNode, tok.ID, nodeName)
	}
	var node v1alpha1.EdgeNode
	if err := c.Get(ctx, client.ObjectKey{Name: nodeName}, &node); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: EdgeNode %s", ErrEdgeNodeMissing, nodeName)
		}
		return nil, fmt.Errorf("reading EdgeNode %s: %w", nodeName, err)
	}
	if node.DeletionTimestamp != nil {
		return nil, fmt.Errorf("%w: EdgeNode %s is being deleted", ErrEdgeNodeMissing, nodeName)
	}
	if err := deleteExactly(ctx, c, &secret); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil, fmt.Errorf("%w: token %s was used by a concurrent join", ErrUnknownToken, tok.ID)
		}
		return nil, fmt.Errorf("using up join token %s: %w", tok.ID, err)
	}
	return &node, nil
}

// deleteExactly deletes secret only if it is still the version we read: the API server checks
// the preconditions and the deletion atomically, which is what makes a token single-use.
func deleteExactly(ctx context.Context, c client.Client, secret *corev1.Secret) error {
	return c.Delete(ctx, secret, client.Preconditions{UID: &secret.UID, ResourceVersion: &secret.ResourceVersion})
}
