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

package edged

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Default back-off, kubelet's: 10 s doubling up to 5 min.
const (
	DefaultBackoffInitial = 10 * time.Second
	DefaultBackoffMax     = 5 * time.Minute
)

// backoff is kubelet's container restart back-off: the first restart after a failure is at
// once, the next waits Initial after the failure, and each further one twice as long up to Max.
// An entry not touched for twice Max is forgotten, so a container that ran well for a while
// starts over at Initial.
type backoff struct {
	clock        clock.Clock
	initial, max time.Duration
	mu           sync.Mutex
	entries      map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	last  time.Time
}

func newBackoff(c clock.Clock, initial, maxDelay time.Duration) *backoff {
	return &backoff{clock: c, initial: initial, max: maxDelay, entries: map[string]*backoffEntry{}}
}

// inBackoffSince says whether a failure at eventTime must still wait, and until when.
func (b *backoff) inBackoffSince(key string, eventTime time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e) {
		return false, time.Time{}
	}
	until := eventTime.Add(e.delay)
	return b.clock.Now().Before(until), until
}

// inBackoff says whether the last failure recorded under key must still wait.
func (b *backoff) inBackoff(key string) bool {
	b.mu.Lock()
	e, ok := b.entries[key]
	b.mu.Unlock()
	if !ok {
		return false
	}
	in, _ := b.inBackoffSince(key, e.last)
	return in
}

// next records a failure at eventTime and lengthens the next wait.
func (b *backoff) next(key string, eventTime time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e) {
		b.entries[key] = &backoffEntry{delay: b.initial, last: eventTime}
		return
	}
	e.delay = min(2*e.delay, b.max)
	e.last = eventTime
}

// forget drops every entry whose key starts with prefix.
func (b *backoff) forget(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

func (b *backoff) expired(e *backoffEntry) bool { return b.clock.Since(e.last) > 2*b.max }
