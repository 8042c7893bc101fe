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

import "time"

// Backoff paces redials: the ceiling starts at Initial and doubles after every failed attempt up
// to Max; the delay is drawn below the ceiling according to Jitter. A session that got as far as
// the cloud's Welcome starts the ceiling again from Initial.
type Backoff struct {
	// Initial is the first ceiling.
	Initial time.Duration
	// Max caps the ceiling.
	Max time.Duration
	// Jitter is the fraction of the ceiling drawn at random, from 0 (always wait the ceiling)
	// to 1 (full jitter: anywhere from nothing to the ceiling). Full jitter keeps a fleet of
	// edges that lost the cloud together from redialing together.
	Jitter float64
}

// DefaultBackoff is the backoff of a zero Config.Backoff.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 2 * time.Minute, Jitter: 1}
}

func (b Backoff) withDefaults() Backoff {
	if b == (Backoff{}) {
		return DefaultBackoff()
	}
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff().Initial
	}
	if b.Max < b.Initial {
		b.Max = max(b.Initial, DefaultBackoff().Max)
	}
	b.Jitter = min(max(b.Jitter, 0), 1)
	return b
}

// Delay returns the wait before attempt number attempt (0 for the first redial), given r, a
// random number in [0, 1).
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	ceiling := b.Initial
	for range attempt {
		if ceiling >= b.Max/2 {
			ceiling = b.Max
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	fixed := float64(ceiling) * (1 - b.Jitter)
	return time.Duration(fixed + r*float64(ceiling)*b.Jitter)
}
