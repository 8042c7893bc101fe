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

package meta

import (
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// MaxReportSize is the largest report body Enqueue accepts, so that any one report fits in a
// message (wire.MaxFrameSize) with room to spare. A report that could never be sent would sit
// at the head of the outbox for ever.
const MaxReportSize = 1 << 20

// Enqueue adds a report to the outbox and returns its sequence number. Reports coalesce: the
// outbox holds at most one per (kind, namespace, name, key), so a newer report replaces a
// pending older one and takes the new, higher sequence. key is the edge's own coalescing key
// (for example a property name); the cloud never sees it.
//
// The sequence counter is bumped in the same transaction as the insert, so sequences strictly
// grow across restarts and a crash never hands one out twice.
func (s *Store) Enqueue(kind, namespace, name, key string, body []byte) (uint64, error) {
	if err := checkReport(kind, namespace, name, body); err != nil {
		return 0, err
	}
	var seq uint64
	err := s.write(func(tx *gorm.DB) error {
		var err error
		seq, err = enqueue(tx, kind, namespace, name, key, body)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enqueueing report %s %s/%s: %w", kind, namespace, name, err)
	}
	return seq, nil
}

// checkReport refuses a report the outbox must not hold.
func checkReport(kind, namespace, name string, body []byte) error {
	switch {
	case kind == "" || name == "":
		return fmt.Errorf("%w: a report needs a kind and a name, got %q and %q", ErrInvalid, kind, name)
	case len(body) > MaxReportSize:
		return fmt.Errorf("%w: report %s %s/%s is %d bytes, the limit is %d", ErrInvalid, kind, namespace, name, len(body), MaxReportSize)
	case !json.Valid(body):
		// The cloud refuses a report batch with an invalid body, so one would block the outbox.
		return fmt.Errorf("%w: report %s %s/%s has no valid JSON body", ErrInvalid, kind, namespace, name)
	}
	return nil
}

// enqueue is Enqueue's work inside the caller's transaction.
func enqueue(tx *gorm.DB, kind, namespace, name, key string, body []byte) (uint64, error) {
	seq, err := bumpCounter(tx, counterLastSeq)
	if err != nil {
		return 0, err
	}
	err = tx.Where("kind = ? AND namespace = ? AND name = ? AND key = ?", kind, namespace, name, key).
		Delete(&outboxRow{}).Error
	if err != nil {
		return 0, fmt.Errorf("coalescing: %w", err)
	}
	if err := tx.Create(&outboxRow{Seq: seq, Kind: kind, Namespace: namespace, Name: name, Key: key, Body: body}).Error; err != nil {
		return 0, err
	}
	return seq, nil
}

// Pending returns up to limit pending reports with a sequence above after, in sequence order.
// A limit of zero or less means no limit.
func (s *Store) Pending(after uint64, limit int) ([]wire.Report, error) {
	q := s.db.Where("seq > ?", after).Order("seq")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rows []outboxRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	reports := make([]wire.Report, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		reports = append(reports, wire.Report{Seq: r.Seq, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Body: r.Body})
	}
	return reports, nil
}

// PendingCount returns how many reports wait for the cloud's ack.
func (s *Store) PendingCount() (int, error) {
	var n int64
	if err := s.db.Model(&outboxRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("counting the outbox: %w", err)
	}
	return int(n), nil
}

// Ack removes every pending report with a sequence up to upTo: the cloud's acks are
// cumulative. It records upTo as the highest acked sequence if it is higher than the one held.
//
// If the cloud has acked a sequence this store never handed out (the database was lost and
// recreated), the sequence counter jumps past it: the cloud ignores reports older than what it
// applied, so new reports must be numbered above it.
func (s *Store) Ack(upTo uint64) error {
	if upTo == 0 {
		return nil
	}
	return s.write(func(tx *gorm.DB) error { return ack(tx, upTo) })
}

// Ack is Store.Ack inside this transaction.
func (t *Tx) Ack(upTo uint64) error {
	if upTo == 0 {
		return nil
	}
	return ack(t.tx, upTo)
}

func ack(tx *gorm.DB, upTo uint64) error {
	if err := tx.Where("seq <= ?", upTo).Delete(&outboxRow{}).Error; err != nil {
		return fmt.Errorf("acking reports up to %d: removing acked reports: %w", upTo, err)
	}
	if err := raiseCounter(tx, counterAckedSeq, upTo); err != nil {
		return fmt.Errorf("acking reports up to %d: %w", upTo, err)
	}
	if err := raiseCounter(tx, counterLastSeq, upTo); err != nil {
		return fmt.Errorf("acking reports up to %d: %w", upTo, err)
	}
	return nil
}

// AckedSeq returns the highest sequence the cloud has acknowledged.
func (s *Store) AckedSeq() (uint64, error) {
	return s.counter(counterAckedSeq)
}

// LastSeq returns the last sequence Enqueue handed out (or the highest acked, if higher).
func (s *Store) LastSeq() (uint64, error) {
	return s.counter(counterLastSeq)
}

func (s *Store) counter(name string) (uint64, error) {
	var row counterRow
	if err := s.db.Where("name = ?", name).Take(&row).Error; err != nil {
		return 0, fmt.Errorf("reading counter %s: %w", name, err)
	}
	return row.Value, nil
}

// bumpCounter adds one to a counter and returns the new value. The update comes first so the
// transaction holds the write lock before it reads.
func bumpCounter(tx *gorm.DB, name string) (uint64, error) {
	var row counterRow
	err := tx.Model(&row).Clauses(clause.Returning{Columns: []clause.Column{{Name: "value"}}}).
		Where("name = ?", name).Update("value", gorm.Expr("value + 1")).Error
	if err != nil {
		return 0, fmt.Errorf("bumping counter %s: %w", name, err)
	}
	if row.Value == 0 {
		return 0, fmt.Errorf("bumping counter %s: the counter is missing", name)
	}
	return row.Value, nil
}

// raiseCounter sets a counter to v if v is higher.
func raiseCounter(tx *gorm.DB, name string, v uint64) error {
	err := tx.Model(&counterRow{}).Where("name = ? AND value < ?", name, v).Update("value", v).Error
	if err != nil {
		return fmt.Errorf("raising counter %s to %d: %w", name, v, err)
	}
	return nil
}
