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

// Package pki owns the edgetwin certificate authority and every certificate it issues: the CA
// itself (kept in a kubernetes.io/tls Secret, created on first start), CloudHub's serving
// certificate, and the client certificates of edge nodes, which name the node (CN) and its
// EdgeNode's UID (a URI SAN). NodeIdentity is the one place that reads that identity back.
//
// It does not decide who may have a certificate: the join service (cloud/join) checks the
// bootstrap token first, and CloudHub checks that the EdgeNode still exists. It never touches
// any Secret but the CA's, and never replaces a CA Secret it cannot read: losing the CA would
// orphan every node, so a broken Secret is an error for a human to look at.
//
// The client given to EnsureCA should read Secrets directly from the API server rather than
// through a manager's cache, which would need list and watch on every Secret.
package pki
