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
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 0}
	full := Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 1}
	half := Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.5}
	tests := []struct {
		name    string
		backoff Backoff
		attempt int
		r       float64
		want    time.Duration
	}{
		{name: "the first wait is the initial one", backoff: b, attempt: 0, want: time.Second},
		{name: "each failed attempt doubles the wait", backoff: b, attempt: 3, want: 8 * time.Second},
		{name: "the wait stops at the max", backoff: b, attempt: 4, want: 10 * time.Second},
		{name: "a very long run of failures neither overflows nor passes the max", backoff: b, attempt: 1000, want: 10 * time.Second},
		{name: "full jitter can wait nothing at all", backoff: full, attempt: 2, r: 0, want: 0},
		{name: "full jitter draws below the ceiling", backoff: full, attempt: 2, r: 0.25, want: time.Second},
		{name: "half jitter keeps half the ceiling", backoff: half, attempt: 1, r: 0, want: time.Second},
		{name: "half jitter adds at most the other half", backoff: half, attempt: 1, r: 0.5, want: 1500 * time.Millisecond},
		{name: "jitter ignores the random number once past the max", backoff: b, attempt: 9, r: 0.9, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.backoff.Delay(tt.attempt, tt.r); got != tt.want {
				t.Errorf("Delay(%d, %v) = %s, want %s", tt.attempt, tt.r, got, tt.want)
			}
		})
	}
}

func TestBackoffDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Backoff
		want Backoff
	}{
		{name: "a zero backoff takes every default", in: Backoff{}, want: DefaultBackoff()},
		{name: "a max below the initial is raised", in: Backoff{Initial: time.Second, Max: time.Millisecond},
			want: Backoff{Initial: time.Second, Max: DefaultBackoff().Max}},
		{name: "jitter is clamped to one", in: Backoff{Initial: time.Second, Max: time.Minute, Jitter: 3},
			want: Backoff{Initial: time.Second, Max: time.Minute, Jitter: 1}},
		{name: "a set backoff without jitter keeps none", in: Backoff{Initial: time.Second, Max: time.Minute},
			want: Backoff{Initial: time.Second, Max: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.withDefaults(); got != tt.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
