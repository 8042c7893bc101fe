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

// Package certapi owns the wire shapes of cloudcore's certificate HTTP API, POST /join and
// POST /v1/renew, and the code both ends of both calls share: the request, response and error
// bodies, the strict decoder and JSON answers the cloud handlers use, and the key, request and
// answer checks the edge clients use. One definition serves the cloud (cloud/join,
// cloud/renew) and the edge (edge/join, edge/renew), so the two sides cannot drift apart.
//
// It imports only the standard library: edgecore links it, and edgecore must stay free of
// client-go, controller-runtime and the cloud/ packages. What an endpoint decides (which
// tokens, nodes and certificates it accepts, its refusal reasons) stays in its own package.
package certapi
