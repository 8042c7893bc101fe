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

// Package renew is the cloud side of certificate renewal: POST /v1/renew, served on CloudHub's
// TLS port, gives a node whose current client certificate is still good a new certificate for a
// new key.
//
// The caller proves who it is with its current certificate in the TLS handshake, never with
// anything in the body: the new certificate names the node and EdgeNode UID of the certificate
// presented (pki.NodeIdentity), whatever the CSR asks for. The node must pass the same check
// CloudHub makes before it accepts a session (hub.Authorizer: the EdgeNode exists, is not being
// deleted and has the UID in the certificate), so a node that may no longer connect cannot
// renew either, and a deleted node's certificate dies at its expiry.
//
// The package issues certificates through cloud/pki and reads EdgeNodes only through the
// Authorizer it is given. It owns no state and touches no Secret.
package renew
