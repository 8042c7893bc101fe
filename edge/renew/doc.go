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

// Package renew is the edge side of certificate renewal: a Renewer that watches the node's
// client certificate and, before it expires, trades it for a new one through the cloud's
// POST /v1/renew (cloud/renew), with a new key each time.
//
// The current certificate is the only credential: it is presented in the TLS handshake, and the
// CA file is the only root the server is checked against. The answer is kept only when it
// names the same node and EdgeNode UID, is for the new key and verifies against the CA as a
// client certificate. The key is written before the certificate, each through a temporary file
// and a rename, and the certificate is staged beside its final path before the key is
// replaced, so that New can finish a renewal cut short by a crash; nothing is ever deleted but
// that staged file.
//
// The request, the answer and the checks it shares with joining are pkg/certapi's. It imports
// the standard library, logr, k8s.io/utils/clock, edge/config and pkg/certapi, never client-go,
// controller-runtime or the cloud/ packages, which edgecore must not link (cmd/edgecore's
// TestEdgecoreLinksNoCloudPackage checks).
package renew
