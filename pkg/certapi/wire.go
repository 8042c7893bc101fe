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

package certapi

// The paths of the API's endpoints on cloudcore.
const (
	// JoinPath is where a node trades a join token for its first certificate.
	JoinPath = "/join"
	// RenewPath is where a node trades its current certificate for a new one.
	RenewPath = "/v1/renew"
)

// What cloud/pki writes in a node certificate. The edge cannot import cloud/pki, so these mirror
// it; cloud/join's and edge/renew's tests run the edge against certificates cloud/pki signs.
const (
	// NodeOrganization is the subject organization of every node certificate.
	NodeOrganization = "edgetwin:nodes"
	// NodeURIPrefix starts the one URI SAN of a node certificate; the EdgeNode's UID follows.
	NodeURIPrefix = "urn:edgetwin:edgenode:"
)

// JoinRequest is the body of POST /join.
type JoinRequest struct {
	// Token is the join token, <id>.<secret>.<ca-pin>.
	Token string `json:"token"`
	// NodeName is the name the node joins as; the token must be bound to it.
	NodeName string `json:"nodeName"`
	// CSR is the node's PEM certificate signing request, for an ECDSA P-256 or P-384 key.
	CSR string `json:"csr"`
}

// RenewalRequest is the body of POST /v1/renew.
type RenewalRequest struct {
	// CSR is the node's PEM certificate signing request for its new ECDSA P-256 or P-384 key.
	// Only its key is used.
	CSR string `json:"csr"`
}

// Response is the body of a successful join or renewal: both have this shape, so that an edge
// node stores both the same way.
type Response struct {
	// Certificate is the node's PEM client certificate.
	Certificate string `json:"certificate"`
	// CA is the PEM CA certificate that signed it, which the node trusts.
	CA string `json:"ca"`
}

// ErrorResponse is the body of a refused join or renewal.
type ErrorResponse struct {
	// Reason is one of the endpoint's Reason constants, for programs.
	Reason string `json:"reason"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
}
