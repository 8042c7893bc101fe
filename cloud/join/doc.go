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

// Package join is the cloud side of joining an edge node: bootstrap tokens and the HTTPS
// endpoint that exchanges one for a client certificate.
//
// A token reads
//
//	<id>.<secret>.<ca-pin>
//
// where id is 6 characters [a-z0-9] (it names the token's Secret, so it is not secret), secret
// is 26 characters of lower-case base32 [a-z2-7] from crypto/rand (130 bits), and ca-pin is the
// 64 lower-case hex digits of the SHA-256 of the CA certificate's SubjectPublicKeyInfo (the hex
// of pki.CAHash, without its "sha256:" prefix). The pin lets 'edgecore join' check the server's
// CA from the token alone, before it trusts anything. Example (98 characters):
//
//	k3d9qa.n4w2x7c5v3b6m7k2j4h6g2f3d5.<64 hex digits>
//
// Each token is one Secret, edgetwin-token-<id>, of type edgetwin.dev/join-token, labelled
// edgetwin.dev/token=true, in cloudcore's namespace, holding the node name (node-name), the
// expiry in RFC 3339 (expiration) and only the hex SHA-256 of the secret
// (token-secret-sha256): reading the Secret does not let anyone join. The Secret is owned by
// the EdgeNode, so deleting the node garbage-collects its unused tokens.
//
// A token is bound to one node name, expires, and is used once: Consume deletes its Secret with
// UID and resourceVersion preconditions, so of two concurrent joins with one token exactly one
// succeeds.
//
// The package owns the token Secrets and creates EdgeNodes that do not exist yet (Create). It
// does not touch the CA (cloud/pki owns it), EdgeNode status (CloudHub and the controllers own
// it) or any other Secret. The client given to Consume and the Handler should read Secrets
// directly rather than through a manager's cache, which would need list and watch on every
// Secret and could be stale.
package join
