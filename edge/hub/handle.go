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

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// handle acts on one message from the cloud. An error ends the session.
func (s *session) handle(m *wire.Message) error {
	store, listener := s.hub.cfg.Store, s.hub.cfg.Listener
	switch m.Type {
	case wire.TypeUpsert:
		ref := *m.Object
		// Stored before acked: an ack promises the cloud the edge holds this version. If the
		// store fails, no ack; the next Hello tells the cloud what is really held.
		if err := store.PutObject(ref, m.Body); err != nil {
			return fmt.Errorf("handling upsert %s: %w", m.ID, err)
		}
		s.log.V(2).Info("Stored object", "object", ref.String())
		if listener != nil {
			listener.ObjectStored(ref, m.Body)
		}
		return s.ack(ref)
	case wire.TypeDelete:
		ref := *m.Object
		if err := store.DeleteObject(ref); err != nil {
			return fmt.Errorf("handling delete %s: %w", m.ID, err)
		}
		s.log.V(2).Info("Deleted object", "object", ref.String())
		if listener != nil {
			listener.ObjectDeleted(ref)
		}
		return s.ack(ref)
	case wire.TypeSynced:
		if !s.hub.stats.synced.Swap(true) {
			s.log.Info("Synced with the cloud")
		}
		return nil
	case wire.TypeAck:
		if m.Object != nil {
			return fmt.Errorf("%w: the cloud acked object %s; only the edge acks objects", ErrProtocol, m.Object)
		}
		if err := store.Ack(m.Seq); err != nil {
			return fmt.Errorf("handling ack %s of reports up to %d: %w", m.ID, m.Seq, err)
		}
		return nil
	case wire.TypeRefused:
		return &RefusedError{Reason: m.Refused.Reason, Message: m.Refused.Message}
	default:
		return fmt.Errorf("%w: unexpected %s %s from the cloud during a session", ErrProtocol, m.Type, m.ID)
	}
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
