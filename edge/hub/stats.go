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
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrProtocol is wrapped by errors about what the cloud sent: a frame that does not decode, a
// message out of place. The hub drops such a connection and redials.
var ErrProtocol = errors.New("protocol error")

// RefusedError is the cloud's refusal of a Hello.
type RefusedError struct {
	// Reason is the cloud's CamelCase reason, for example "ProtocolVersionRefused".
	Reason string
	// Message says what is wrong, for people.
	Message string
}

// Error implements error.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("the cloud refused the connection: %s: %s", e.Reason, e.Message)
}

// Stats is a snapshot of the hub's connection state and traffic, for metrics.
type Stats struct {
	// Connected is true while a session is up (past the Welcome).
	Connected bool
	// Synced is true once the cloud has sent Synced on the current session.
	Synced bool
	// Dials counts connection attempts; Reconnects those after the first.
	Dials, Reconnects uint64
	// MessagesIn, BytesIn, MessagesOut and BytesOut count websocket messages and their bytes.
	MessagesIn, BytesIn, MessagesOut, BytesOut uint64
	// ProtocolErrors counts sessions dropped because of what the cloud sent.
	ProtocolErrors uint64
	// Commits counts the transactions that stored messages from the cloud: one per batch of
	// messages read while the previous batch was being committed, not one per message.
	Commits uint64
}

// counters are the live values behind Stats.
type counters struct {
	connected, synced                                 atomic.Bool
	dials, messagesIn, bytesIn, messagesOut, bytesOut atomic.Uint64
	protocolErrors, commits                           atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Connected:      c.connected.Load(),
		Synced:         c.synced.Load(),
		Dials:          c.dials.Load(),
		MessagesIn:     c.messagesIn.Load(),
		BytesIn:        c.bytesIn.Load(),
		MessagesOut:    c.messagesOut.Load(),
		BytesOut:       c.bytesOut.Load(),
		ProtocolErrors: c.protocolErrors.Load(),
		Commits:        c.commits.Load(),
	}
	if s.Dials > 0 {
		s.Reconnects = s.Dials - 1
	}
	return s
}

// errSessionEnded is the cause a writer reports when it notices the session has stopped; the
// first cause, recorded by stop, is the one that counts.
var errSessionEnded = errors.New("the session ended")
