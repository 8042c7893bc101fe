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

package hub

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/edgetwin/edgetwin/edge/meta"
)

func TestNewChecksTheConfig(t *testing.T) {
	store, err := meta.Open(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS13}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		wantURL string
	}{
		{name: "a wss URL is dialed at the connect path", cfg: Config{URL: "wss://cloud:10000", TLSConfig: tlsConfig, Store: store},
			wantURL: "wss://cloud:10000/v1/connect"},
		{name: "a URL with a path prefix keeps it", cfg: Config{URL: "wss://cloud:10000/edgetwin/", TLSConfig: tlsConfig, Store: store},
			wantURL: "wss://cloud:10000/edgetwin/v1/connect"},
		{name: "a plain ws URL is refused", cfg: Config{URL: "ws://cloud:10000", TLSConfig: tlsConfig, Store: store}, wantErr: true},
		{name: "a URL without a host is refused", cfg: Config{URL: "wss://", TLSConfig: tlsConfig, Store: store}, wantErr: true},
		{name: "a config without TLS is refused", cfg: Config{URL: "wss://cloud:10000", Store: store}, wantErr: true},
		{name: "a config without a store is refused", cfg: Config{URL: "wss://cloud:10000", TLSConfig: tlsConfig}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New() error = %v, want an error: %v", err, tt.wantErr)
			}
			if err == nil && h.url.String() != tt.wantURL {
				t.Errorf("the hub dials %s, want %s", h.url, tt.wantURL)
			}
		})
	}
}
