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

// Package join is the edge side of joining: 'edgecore join' gives it the cloud's address, a
// join token and the node name, and it comes back with a fresh ECDSA P-256 key, a client
// certificate for it signed by the edgetwin CA, and that CA.
//
// Before the join the node trusts nothing: the token carries the SHA-256 pin of the CA's public
// key (see cloud/join for the format), and the TLS handshake is accepted only when the server
// presents a CA with that pin in its chain and a serving certificate that the CA signed for the
// address dialled. Only then is the token sent. With a CA file (WithCAFile) the server is
// verified against that CA instead, which must still match the pin.
//
// It owns no state: the caller writes the result to disk. SystemdUnit and WriteSystemdUnit make
// the unit 'edgecore join --install-systemd' writes, which runs 'edgecore run' at boot. The request, the answer and the checks
// it shares with renewal are pkg/certapi's. Besides that it imports only the standard library:
// never client-go, controller-runtime or the cloud/ packages, which edgecore must not link
// (cmd/edgecore's TestEdgecoreLinksNoCloudPackage checks).
package join
