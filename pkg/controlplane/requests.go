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

package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Requests reads the API server's own count of the requests it served
// (apiserver_request_total), so that tests and benchmarks measure writes as the API server saw
// them rather than as a client counted its attempts.
type Requests struct {
	client rest.Interface
}

// NewRequests makes a reader for the API server cfg points at; cfg must be allowed /metrics.
func NewRequests(cfg *rest.Config) (*Requests, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a client for /metrics: %w", err)
	}
	return &Requests{client: cs.Discovery().RESTClient()}, nil
}

// Count returns the requests with verb on resource and subresource ("" for the object itself);
// codes, if given, keeps only those response codes (for example "409").
func (r *Requests) Count(ctx context.Context, verb, resource, subresource string, codes ...string) (float64, error) {
	raw, err := r.client.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="`+resource+`"`) ||
			!strings.Contains(line, `subresource="`+subresource+`"`) || !strings.Contains(line, `verb="`+verb+`"`) {
			continue
		}
		if len(codes) > 0 && !slices.ContainsFunc(codes, func(c string) bool { return strings.Contains(line, `code="`+c+`"`) }) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}
