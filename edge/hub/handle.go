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

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// maxBatch bounds how many messages one transaction takes: the reader queues at most
// inQueueSize, and a batch drains what is queued up to this.
const maxBatch = 256

// handleBatch acts on messages from the cloud, in order, with one commit for all of them: the
// objects they store or delete and the cloud's acks of reports are written in one
// transaction; only after it committed does the listener learn of the objects and are they
// acknowledged to the cloud. A message that ends the session (a refusal, something out of
// place) ends the batch: the messages before it are still applied. An error ends the session.
func (s *session) handleBatch(batch []*wire.Message) error {
	n, endErr := len(batch), error(nil)
	for i, m := range batch {
		if err := s.check(m); err != nil {
			n, endErr = i, err
			break
		}
	}
	if err := s.apply(batch[:n]); err != nil {
		return err
	}
	return endErr
}

// check says whether a message belongs in a session; a refusal or a message out of place
// returns the error that ends the session.
func (s *session) check(m *wire.Message) error {
	switch m.Type {
	case wire.TypeUpsert, wire.TypeDelete, wire.TypeSynced:
		return nil
	case wire.TypeAck:
		if m.Object != nil {
			return fmt.Errorf("%w: the cloud acked object %s; only the edge acks objects", ErrProtocol, m.Object)
		}
		return nil
	case wire.TypeRefused:
		return &RefusedError{Reason: m.Refused.Reason, Message: m.Refused.Message}
	default:
		return fmt.Errorf("%w: unexpected %s %s from the cloud during a session", ErrProtocol, m.Type, m.ID)
	}
}

// apply stores the batch in one transaction, then tells the listener and acks each object.
// Stored before acked: an ack promises the cloud the edge holds this version. If the commit
// fails, nothing of the batch is acked; the next Hello tells the cloud what is really held.
func (s *session) apply(batch []*wire.Message) error {
	store, listener := s.hub.cfg.Store, s.hub.cfg.Listener
	var changes []Change
	writes := false
	for _, m := range batch {
		switch m.Type {
		case wire.TypeUpsert:
			changes = append(changes, Change{Ref: *m.Object, Body: m.Body})
			writes = true
		case wire.TypeDelete:
			changes = append(changes, Change{Ref: *m.Object, Deleted: true})
			writes = true
		case wire.TypeAck:
			writes = true
		}
	}
	if writes {
		err := store.Update(func(tx *meta.Tx) error {
			for _, m := range batch {
				var err error
				switch m.Type {
				case wire.TypeUpsert:
					err = tx.PutObject(*m.Object, m.Body)
				case wire.TypeDelete:
					err = tx.DeleteObject(*m.Object)
				case wire.TypeAck:
					err = tx.Ack(m.Seq)
				}
				if err != nil {
					return fmt.Errorf("handling %s %s: %w", m.Type, m.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.hub.stats.commits.Add(1)
		s.log.V(2).Info("Committed messages from the cloud", "messages", len(batch), "objects", len(changes))
	}
	if listener != nil && len(changes) > 0 {
		if bl, ok := listener.(BatchListener); ok {
			bl.ObjectsChanged(changes)
		} else {
			for _, c := range changes {
				if c.Deleted {
					listener.ObjectDeleted(c.Ref)
				} else {
					listener.ObjectStored(c.Ref, c.Body)
				}
			}
		}
	}
	for _, m := range batch {
		switch m.Type {
		case wire.TypeUpsert, wire.TypeDelete:
			if err := s.ack(*m.Object); err != nil {
				return err
			}
		case wire.TypeSynced:
			if !s.hub.stats.synced.Swap(true) {
				s.log.Info("Synced with the cloud")
			}
		}
	}
	return nil
}

// ack queues the ack of an object for the writer, waiting while the queue is full.
func (s *session) ack(ref wire.ObjectRef) error {
	m := &wire.Message{ID: s.hub.nextID(), Type: wire.TypeAck, Object: &ref}
	select {
	case s.acks <- m:
		return nil
	case <-s.done:
		return fmt.Errorf("acking %s: %w", ref, errSessionEnded)
	}
}
