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

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DecodeStrict reads one JSON T from r, for a body that comes from anyone: unknown fields and
// data after the object are errors, so that a client speaking another version of the API learns
// so instead of being half understood. what names T in the errors ("join request"). An
// *http.MaxBytesError is returned as it is, for the handler to answer 413. Checking that the
// fields are set is the caller's.
func DecodeStrict[T any](r io.Reader, what string) (*T, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("the body is not a %s: %w", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("the body has data after the %s", what)
	}
	return &v, nil
}

// WriteError answers with status and an ErrorResponse.
func WriteError(w http.ResponseWriter, status int, reason, message string) {
	WriteJSON(w, status, ErrorResponse{Reason: reason, Message: message})
}

// WriteJSON answers with status and body as JSON. The answers carry credentials, so no cache
// may keep them, and no browser may take them for anything but JSON.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	// Encoding the API's plain structs cannot fail.
	_ = json.NewEncoder(&buf).Encode(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
