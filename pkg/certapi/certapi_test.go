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

package certapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgetwin/edgetwin/pkg/certapi"
)

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr string
	}{
		{name: "a request with known fields is read", body: `{"csr":"x"}`, want: "x"},
		{name: "an unknown field is refused", body: `{"csr":"x","extra":1}`,
			wantErr: `the body is not a renewal request: json: unknown field "extra"`},
		{name: "data after the request is refused", body: `{"csr":"x"} {}`,
			wantErr: "the body has data after the renewal request"},
		{name: "a body that is not JSON is refused", body: `<html>`,
			wantErr: "the body is not a renewal request: "},
		{name: "an empty body is refused", body: ``, wantErr: "the body is not a renewal request: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certapi.DecodeStrict[certapi.RenewalRequest](strings.NewReader(tt.body), "renewal request")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeStrict = %+v, %v; want an error starting %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.CSR != tt.want {
				t.Fatalf("DecodeStrict = %+v, %v; want csr %q", got, err, tt.want)
			}
		})
	}
}

// A body over the handler's limit must come back as the *http.MaxBytesError itself, so that the
// handler answers 413 rather than 400.
func TestDecodeStrictPassesTheSizeLimitThrough(t *testing.T) {
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"csr":"`+strings.Repeat("x", 100)+`"}`)), 10)
	_, err := certapi.DecodeStrict[certapi.RenewalRequest](body, "renewal request")
	if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
		t.Fatalf("DecodeStrict error = %v, want an *http.MaxBytesError", err)
	}
}

func TestServerErrorNamesTheOperation(t *testing.T) {
	tests := []struct {
		name string
		err  certapi.ServerError
		want string
	}{
		{"a join refused with a reason", certapi.ServerError{Operation: "join", StatusCode: 403, Reason: "TokenExpired", Message: "expired"},
			"join refused by the server (HTTP 403, TokenExpired): expired"},
		{"a renewal refused without a reason", certapi.ServerError{Operation: "renewal", StatusCode: 502, Message: "Bad Gateway"},
			"renewal refused by the server (HTTP 502): Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

var errBad = errors.New("invalid test response")

// post answers one Post with status and body.
func post(t *testing.T, status int, body string) (*certapi.Response, error) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	endpoint, err := url.Parse(srv.URL + certapi.RenewPath)
	if err != nil {
		t.Fatal(err)
	}
	call := certapi.Call{Name: "renewal", Doing: "renewing", ErrBadResponse: errBad}
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	return call.Post(context.Background(), endpoint, tlsConfig, 10*time.Second, certapi.RenewalRequest{CSR: "x"})
}

func TestPostReadsTheAnswer(t *testing.T) {
	got, err := post(t, http.StatusOK, `{"certificate":"c","ca":"a"}`)
	if err != nil || got.Certificate != "c" || got.CA != "a" {
		t.Fatalf("Post = %+v, %v", got, err)
	}
}

func TestPostRefusals(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		wantReason  string
		wantMessage string
	}{
		{name: "a JSON refusal keeps its reason and message", status: http.StatusForbidden,
			body: `{"reason":"NodeRefused","message":"gone"}`, wantReason: "NodeRefused", wantMessage: "gone"},
		{name: "a refusal that is not JSON keeps an excerpt", status: http.StatusBadGateway,
			body: "  <html>" + strings.Repeat("x", 300), wantMessage: "<html>" + strings.Repeat("x", 194) + "…"},
		{name: "an empty refusal says the status", status: http.StatusServiceUnavailable,
			wantMessage: "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := post(t, tt.status, tt.body)
			se, ok := errors.AsType[*certapi.ServerError](err)
			if !ok {
				t.Fatalf("Post error = %v, want a *ServerError", err)
			}
			want := certapi.ServerError{Operation: "renewal", StatusCode: tt.status, Reason: tt.wantReason, Message: tt.wantMessage}
			if *se != want {
				t.Errorf("ServerError = %+v, want %+v", *se, want)
			}
		})
	}
}

func TestPostRefusesAnAnswerItCannotRead(t *testing.T) {
	for name, body := range map[string]string{
		"an answer that is not JSON is refused": "<html>",
		"an answer over 1 MiB is refused":       `{"certificate":"` + strings.Repeat("x", 1<<20) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := post(t, http.StatusOK, body); !errors.Is(err, errBad) {
				t.Errorf("Post error = %v, want %v", err, errBad)
			}
		})
	}
}

func TestWriteErrorAnswersJSONThatNoCacheKeeps(t *testing.T) {
	rec := httptest.NewRecorder()
	certapi.WriteError(rec, http.StatusForbidden, "NodeRefused", "gone")
	if rec.Code != http.StatusForbidden || rec.Body.String() != `{"reason":"NodeRefused","message":"gone"}`+"\n" {
		t.Errorf("WriteError wrote %d %q", rec.Code, rec.Body.String())
	}
	for header, want := range map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
}
