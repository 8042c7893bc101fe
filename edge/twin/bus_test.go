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

package twin

import (
	"strings"
	"sync"
)

// memBus is an in-memory Bus: the MQTT topic matching of a broker (+ and #), with delivery on
// one goroutine per bus, after Publish returns, as a broker delivers. It implements exactly the
// Bus interface DeviceTwin uses, so the same tests can later run over the real EventBus.
type memBus struct {
	mu     sync.Mutex
	subs   []memSub
	queue  []memMsg
	cond   *sync.Cond
	closed bool
	done   chan struct{}
	// fail, if set, makes Publish fail for topics it returns true for.
	fail func(topic string) bool
}

type memSub struct {
	filter  string
	handler func(topic string, payload []byte)
}

type memMsg struct {
	topic   string
	payload []byte
}

func newMemBus() *memBus {
	b := &memBus{done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.deliver()
	return b
}

func (b *memBus) Publish(topic string, payload []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil && b.fail(topic) {
		return errBusDown
	}
	b.queue = append(b.queue, memMsg{topic: topic, payload: append([]byte(nil), payload...)})
	b.cond.Signal()
	return nil
}

func (b *memBus) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, memSub{filter: filter, handler: handler})
	return nil
}

// close stops delivery and waits for the message being delivered, so a test can close the store
// after it knowing no handler runs any more.
func (b *memBus) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Signal()
	b.mu.Unlock()
	<-b.done
}

func (b *memBus) deliver() {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closed {
			b.cond.Wait()
		}
		if b.closed {
			b.mu.Unlock()
			return
		}
		m := b.queue[0]
		b.queue = b.queue[1:]
		var handlers []func(string, []byte)
		for _, s := range b.subs {
			if topicMatches(s.filter, m.topic) {
				handlers = append(handlers, s.handler)
			}
		}
		b.mu.Unlock()
		for _, h := range handlers {
			h(m.topic, m.payload)
		}
	}
}

// topicMatches is MQTT's filter matching: + matches one level, # the rest.
func topicMatches(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		switch {
		case level == "#":
			return true
		case i >= len(t):
			return false
		case level != "+" && level != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}
