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
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/edgetwin/edgetwin/cloud/pki"
	"github.com/edgetwin/edgetwin/pkg/certapi"
)

const (
	// Path is where the join endpoint is served.
	Path = certapi.JoinPath
	// DefaultCertificateValidity is how long a node's client certificate is valid when the
	// Handler is not told otherwise. It is short enough that a stolen certificate dies on its
	// own, and edgecore renews well before the end.
	DefaultCertificateValidity = 30 * 24 * time.Hour
	// MaxRequestBytes bounds a join request: a token, a node name and a CSR fit in a few KiB.
	MaxRequestBytes = 64 << 10
)

// The reasons the join endpoint gives in ErrorResponse.Reason. edgecore shows them to the user.
const (
	ReasonInvalidRequest    = "InvalidRequest"
	ReasonRequestTooLarge   = "RequestTooLarge"
	ReasonMethodNotAllowed  = "MethodNotAllowed"
	ReasonInvalidNodeName   = "InvalidNodeName"
	ReasonInvalidCSR        = "InvalidCSR"
	ReasonMalformedToken    = "MalformedToken"
	ReasonUnknownToken      = "UnknownToken"
	ReasonWrongSecret       = "WrongTokenSecret"
	ReasonTokenExpired      = "TokenExpired"
	ReasonTokenForOtherNode = "TokenBoundToOtherNode"
	ReasonEdgeNodeMissing   = "EdgeNodeMissing"
	ReasonInternalError     = "InternalError"
)

// Request is the body of POST /join.
type Request = certapi.JoinRequest

// Response is the body of a successful join.
type Response = certapi.Response

// ErrorResponse is the body of a refused join.
type ErrorResponse = certapi.ErrorResponse

// Handler serves POST /join: it checks the CSR, consumes the token (Consume) and answers with a
// certificate signed by CA for the key in the CSR, naming the node and its EdgeNode's UID. It
// must be served over TLS with a certificate from CA.ServerCertificate, whose chain carries the
// CA that the token pins.
type Handler struct {
	// Client reads and deletes token Secrets and reads EdgeNodes; see the package doc about
	// caching.
	Client client.Client
	// Namespace holds the token Secrets.
	Namespace string
	// CA signs the node certificates.
	CA *pki.CA
	// CertificateValidity is how long a node certificate is valid; zero means
	// DefaultCertificateValidity.
	CertificateValidity time.Duration
	// Now returns the current time, for checking expiry; nil means time.Now.
	Now func() time.Time
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
	req, err := DecodeRequest(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			certapi.WriteError(w, http.StatusRequestEntityTooLarge, ReasonRequestTooLarge,
				fmt.Sprintf("a join request is at most %d bytes", MaxRequestBytes))
			return
		}
		certapi.WriteError(w, http.StatusBadRequest, ReasonInvalidRequest, err.Error())
		return
	}
	logger = logger.WithValues("node", req.NodeName)
	if err := ValidateNodeName(req.NodeName); err != nil {
		certapi.WriteError(w, http.StatusBadRequest, ReasonInvalidNodeName, err.Error())
		return
	}
	// The CSR is checked before the token is consumed, so that a bad CSR does not burn it.
	if _, err := pki.ParseNodeCSR([]byte(req.CSR)); err != nil {
		certapi.WriteError(w, http.StatusBadRequest, ReasonInvalidCSR, err.Error())
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	node, err := Consume(r.Context(), h.Client, h.Namespace, req.Token, req.NodeName, now())
	if err != nil {
		status, reason := refusal(err)
		if status == http.StatusInternalServerError {
			logger.Error(err, "Join failed")
			certapi.WriteError(w, status, reason, "the join service could not check the token; see cloudcore's log")
			return
		}
		logger.Info("Join refused", "reason", reason, "error", err.Error())
		certapi.WriteError(w, status, reason, err.Error())
		return
	}
	validity := h.CertificateValidity
	if validity <= 0 {
		validity = DefaultCertificateValidity
	}
	certPEM, err := h.CA.SignNodeCSR([]byte(req.CSR), node.Name, string(node.UID), validity)
	if err != nil {
		// The CSR was checked above, so this is our fault, and the token is gone: say so.
		logger.Error(err, "Signing the node certificate failed after the token was used")
		certapi.WriteError(w, http.StatusInternalServerError, ReasonInternalError,
			"the token was used but the certificate could not be signed; create a new token")
		return
	}
	logger.Info("Node joined", "uid", node.UID)
	certapi.WriteJSON(w, http.StatusOK, Response{Certificate: string(certPEM), CA: string(h.CA.CertPEM())})
}

// DecodeRequest reads one JSON Request from r: unknown fields, trailing data and missing fields
// are errors. It is exported for its fuzz test and for tools that speak the protocol.
func DecodeRequest(r io.Reader) (*Request, error) {
	req, err := certapi.DecodeStrict[Request](r, "join request")
	if err != nil {
		return nil, err
	}
	switch {
	case req.Token == "":
		return nil, errors.New("the join request has no token")
	case req.NodeName == "":
		return nil, errors.New("the join request has no nodeName")
	case req.CSR == "":
		return nil, errors.New("the join request has no csr")
	}
	return req, nil
}

// refusal maps Consume's errors to an HTTP status and a reason.
func refusal(err error) (status int, reason string) {
	switch {
	case errors.Is(err, ErrMalformedToken):
		return http.StatusBadRequest, ReasonMalformedToken
	case errors.Is(err, ErrInvalidNodeName):
		return http.StatusBadRequest, ReasonInvalidNodeName
	case errors.Is(err, ErrUnknownToken):
		return http.StatusUnauthorized, ReasonUnknownToken
	case errors.Is(err, ErrWrongSecret):
		return http.StatusUnauthorized, ReasonWrongSecret
	case errors.Is(err, ErrExpiredToken):
		return http.StatusForbidden, ReasonTokenExpired
	case errors.Is(err, ErrOtherNode):
		return http.StatusForbidden, ReasonTokenForOtherNode
	case errors.Is(err, ErrEdgeNodeMissing):
		return http.StatusConflict, ReasonEdgeNodeMissing
	default:
		return http.StatusInternalServerError, ReasonInternalError
	}
}
