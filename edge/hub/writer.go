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
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// write is the session's writer: it sends queued acks and streams the outbox. It starts by
// sending everything pending (this is the resend after a reconnect), then whatever is newer
// each time the hub is notified. Reports sent on this connection are not sent again on it: the
// connection is ordered and reliable, and a lost one means a new session that resends.
func (s *session) write() {
	defer close(s.writerDone)
	var sentUpTo uint64 // the highest sequence sent on this connection
	drain := true
	for {
		if drain {
			if err := s.sendOutbox(&sentUpTo); err != nil {
				s.stop(err)
				return
			}
			drain = false
		}
		select {
		case <-s.done:
			return
		case <-s.hub.notify:
			drain = true
		case m := <-s.acks:
			if err := s.send(m); err != nil {
				s.stop(err)
				return
			}
		}
	}
}

// sendOutbox sends the pending reports above *after in bounded batches, one Report message
// each, and moves *after along. Between batches it lets queued acks through, so that a long
// outbox does not hold up the cloud's view of what the edge stored.
func (s *session) sendOutbox(after *uint64) error {
	cfg := &s.hub.cfg
	for {
		reports, err := cfg.Store.Pending(*after, cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("reading the outbox: %w", err)
		}
		if len(reports) == 0 {
			return nil
		}
		reports = trimBatch(reports, cfg.BatchBytes)
		m := &wire.Message{ID: s.hub.nextID(), Type: wire.TypeReport, Reports: reports}
		if err := s.send(m); err != nil {
			return err
		}
		*after = reports[len(reports)-1].Seq
		s.log.V(2).Info("Sent reports", "count", len(reports), "upTo", *after)
		if err := s.sendQueuedAcks(); err != nil {
			return err
		}
	}
}

// sendQueuedAcks sends the acks already queued, without waiting for more.
func (s *session) sendQueuedAcks() error {
	for {
		select {
		case <-s.done:
			return fmt.Errorf("sending acks: %w", errSessionEnded)
		case m := <-s.acks:
			if err := s.send(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// trimBatch keeps the longest prefix of reports whose bodies fit in maxBytes, and at least one.
func trimBatch(reports []wire.Report, maxBytes int) []wire.Report {
	size := 0
	for i := range reports {
		size += len(reports[i].Body)
		if size > maxBytes && i > 0 {
			return reports[:i]
		}
	}
	return reports
}

// send encodes and writes one message. Only one goroutine at a time may call it: the writer,
// or the session's goroutine before the writer starts.
func (s *session) send(m *wire.Message) error {
	data, err := wire.Encode(m)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", m.Type, m.ID, err)
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.hub.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("setting the write deadline: %w", err)
	}
	if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("writing %s %s: %w", m.Type, m.ID, err)
	}
	s.hub.stats.messagesOut.Add(1)
	s.hub.stats.bytesOut.Add(uint64(len(data)))
	return nil
}
