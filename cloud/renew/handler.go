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

package renew

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/edgetwin/edgetwin/cloud/hub"
	"github.com/edgetwin/edgetwin/cloud/join"
	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/pkg/certapi"
)

const (
	// Path is where the renewal endpoint is served.
	Path = certapi.RenewPath
	// MaxRequestBytes bounds a renewal request: a CSR fits in a few KiB.
	MaxRequestBytes = 64 << 10
)

// The reasons the renewal endpoint gives in ErrorResponse.Reason.
const (
	ReasonInvalidRequest     = "InvalidRequest"
	ReasonRequestTooLarge    = "RequestTooLarge"
	ReasonMethodNotAllowed   = "MethodNotAllowed"
	ReasonInvalidCSR         = "InvalidCSR"
	ReasonNoCertificate      = "ClientCertificateRequired"
	ReasonNotNodeCertificate = "NotANodeCertificate"
	ReasonNodeRefused        = "NodeRefused"
	ReasonInternalError      = "InternalError"
)

// Request is the body of POST /v1/renew.
type Request = certapi.RenewalRequest

// Response is the body of a successful renewal. It has the shape of join.Response (it is the
// same type), so that an edge node stores both the same way.
type Response = certapi.Response

// ErrorResponse is the body of a refused renewal, as in cloud/join.
type ErrorResponse = certapi.ErrorResponse

// Handler serves POST /v1/renew. It must be served over TLS by a server that asks for client
// certificates and verifies them against CA (tls.VerifyClientCertIfGiven or stricter, ClientCAs
// CA.Pool()), as cloud/server does: it trusts only a certificate the handshake verified.
type Handler struct {
	// CA signs the new certificates; the presented certificate must verify against it too.
	CA *pki.CA
	// Authorizer decides whether the node named by the presented certificate may still have
	// one. It is CloudHub's, so that renewing and connecting are allowed to the same nodes.
	Authorizer hub.Authorizer
	// CertificateValidity is how long a new certificate is valid; zero means
	// join.DefaultCertificateValidity, as for a certificate issued at join.
	CertificateValidity time.Duration
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := log.FromContext(r.Context()).WithValues("remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		certapi.WriteError(w, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "use POST")
		return
	}
	// Who is asking comes first: an anonymous caller learns nothing about what the body lacks.
	leaf, err := h.verifiedLeaf(r)
	if err != nil {
		certapi.WriteError(w, http.StatusUnauthorized, ReasonNoCertificate, err.Error())
		return
	}
	name, uid, err := pki.NodeIdentity(leaf)
	if err != nil {
		certapi.WriteError(w, http.StatusForbidden, ReasonNotNodeCertificate, err.Error())
		return
	}
	logger = logger.WithValues("node", name, "uid", uid)
	if err := h.Authorizer.Authorize(r.Context(), name, uid); err != nil {
		logger.Info("Renewal refused", "reason", ReasonNodeRefused, "error", err.Error())
		certapi.WriteError(w, http.StatusForbidden, ReasonNodeRefused, "node "+name+" may not renew its certificate: "+err.Error())
		return
	}
	req, err := DecodeRequest(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			certapi.WriteError(w, http.StatusRequestEntityTooLarge, ReasonRequestTooLarge,
				fmt.Sprintf("a renewal request is at most %d bytes", MaxRequestBytes))
			return
		}
		certapi.WriteError(w, http.StatusBadRequest, ReasonInvalidRequest, err.Error())
		return
	}
	if _, err := pki.ParseNodeCSR([]byte(req.CSR)); err != nil {
		certapi.WriteError(w, http.StatusBadRequest, ReasonInvalidCSR, err.Error())
		return
	}
	validity := h.CertificateValidity
	if validity <= 0 {
		validity = join.DefaultCertificateValidity
	}
	// The identity comes from the verified certificate, never from the CSR.
	certPEM, err := h.CA.SignNodeCSR([]byte(req.CSR), name, uid, validity)
	if err != nil {
		logger.Error(err, "Signing the renewed node certificate failed")
		certapi.WriteError(w, http.StatusInternalServerError, ReasonInternalError, "the certificate could not be signed; see cloudcore's log")
		return
	}
	logger.Info("Node certificate renewed", "previousNotAfter", leaf.NotAfter)
	certapi.WriteJSON(w, http.StatusOK, Response{Certificate: string(certPEM), CA: string(h.CA.CertPEM())})
}

// verifiedLeaf returns the client certificate that the TLS handshake verified. It checks the
// leaf against CA once more, for client authentication: the handler must not issue anything on
// the word of a server configured with other ClientCAs, or with none.
func (h *Handler) verifiedLeaf(r *http.Request) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, errors.New("renewing a certificate needs the current node certificate as the TLS client certificate")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: h.CA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("the client certificate does not verify against the edgetwin CA: %w", err)
	}
	return leaf, nil
}

// DecodeRequest reads one JSON Request from r: unknown fields, trailing data and a missing csr
// are errors. It is exported for its fuzz test.
func DecodeRequest(r io.Reader) (*Request, error) {
	req, err := certapi.DecodeStrict[Request](r, "renewal request")
	if err != nil {
		return nil, err
	}
	if req.CSR == "" {
		return nil, errors.New("the renewal request has no csr")
	}
	return req, nil
}
