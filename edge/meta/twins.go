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
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Twin is one property of a device as DeviceTwin keeps it. The store does not interpret the
// values: DeviceTwin checks them against the device's model.
type Twin struct {
	// Namespace and Name name the device; Property names the property.
	Namespace, Name, Property string
	// UID is the Device's UID the row belongs to, so that a device re-created under the same
	// name does not inherit the old one's reported values.
	UID string
	// Desired is the desired value from the Device object, nil when none is set.
	Desired *string
	// DesiredVersion is the content version of the Device object Desired came with.
	DesiredVersion string
	// DesiredAt is when the edge stored Desired, in milliseconds since the Unix epoch.
	DesiredAt int64
	// Reported is the value the mapper last reported, nil when it has reported none.
	Reported *string
	// ReportedAt is when the edge accepted Reported, in milliseconds since the Unix epoch.
	ReportedAt int64
}

// DeviceState is the state a device's mapper last reported.
type DeviceState struct {
	// Namespace and Name name the device.
	Namespace, Name string
	// State is the mapper's word for it (online, offline, ok, unknown, unhealthy).
	State string
	// At is when the edge accepted it, in milliseconds since the Unix epoch.
	At int64
}

// Tx is one write transaction over the store — objects, twin tables, outbox and acks: what is
// written through it is committed together or not at all, with one synchronous write to disk.
// Components that have several things to write (a batch of messages from the cloud, a burst of
// mapper reports) write them through one Tx: that is the edge's group commit.
type Tx struct {
	tx *gorm.DB
}

// Update runs fn in one transaction, committed if fn returns nil and rolled back otherwise (fn's
// error is returned wrapped). A crash before the commit leaves nothing of fn's writes.
func (s *Store) Update(fn func(tx *Tx) error) error {
	err := s.write(func(tx *gorm.DB) error { return fn(&Tx{tx: tx}) })
	if err != nil {
		return fmt.Errorf("updating the edge database: %w", err)
	}
	return nil
}

// PutTwin stores a twin row, replacing the one of the same device and property.
func (t *Tx) PutTwin(tw Twin) error {
	if tw.Name == "" || tw.Property == "" {
		return fmt.Errorf("%w: a twin needs a device name and a property, got %q and %q", ErrInvalid, tw.Name, tw.Property)
	}
	row := twinRow(tw)
	if err := t.tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("storing the twin %s/%s %s: %w", tw.Namespace, tw.Name, tw.Property, err)
	}
	return nil
}

// DeleteTwin removes one property's twin of a device.
func (t *Tx) DeleteTwin(namespace, name, property string) error {
	err := t.tx.Where("namespace = ? AND name = ? AND property = ?", namespace, name, property).Delete(&twinRow{}).Error
	if err != nil {
		return fmt.Errorf("deleting the twin %s/%s %s: %w", namespace, name, property, err)
	}
	return nil
}

// DeleteDevice removes every twin row and the state of a device. Removing a device the store
// does not hold is not an error.
func (t *Tx) DeleteDevice(namespace, name string) error {
	if err := t.tx.Where("namespace = ? AND name = ?", namespace, name).Delete(&twinRow{}).Error; err != nil {
		return fmt.Errorf("deleting the twins of %s/%s: %w", namespace, name, err)
	}
	if err := t.tx.Where("namespace = ? AND name = ?", namespace, name).Delete(&deviceStateRow{}).Error; err != nil {
		return fmt.Errorf("deleting the state of %s/%s: %w", namespace, name, err)
	}
	return nil
}

// PutDeviceState stores the state of a device, replacing the one held.
func (t *Tx) PutDeviceState(st DeviceState) error {
	if st.Name == "" {
		return fmt.Errorf("%w: a device state needs a device name", ErrInvalid)
	}
	row := deviceStateRow(st)
	if err := t.tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("storing the state of %s/%s: %w", st.Namespace, st.Name, err)
	}
	return nil
}

// Enqueue is Store.Enqueue inside this transaction: the report is pending only if the
// transaction commits.
func (t *Tx) Enqueue(kind, namespace, name, key string, body []byte) (uint64, error) {
	if err := checkReport(kind, namespace, name, body); err != nil {
		return 0, err
	}
	seq, err := enqueue(t.tx, kind, namespace, name, key, body)
	if err != nil {
		return 0, fmt.Errorf("enqueueing report %s %s/%s: %w", kind, namespace, name, err)
	}
	return seq, nil
}

// Twins returns every twin row, ordered by device and property.
func (s *Store) Twins() ([]Twin, error) {
	var rows []twinRow
	if err := s.db.Order("namespace, name, property").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("listing twins: %w", err)
	}
	twins := make([]Twin, 0, len(rows))
	for _, r := range rows {
		twins = append(twins, Twin(r))
	}
	return twins, nil
}

// DeviceStates returns every device state held, ordered by device.
func (s *Store) DeviceStates() ([]DeviceState, error) {
	var rows []deviceStateRow
	if err := s.db.Order("namespace, name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("listing device states: %w", err)
	}
	states := make([]DeviceState, 0, len(rows))
	for _, r := range rows {
		states = append(states, DeviceState(r))
	}
	return states, nil
}

// ObjectsOfKind returns every object of a kind with its body, ordered by namespace and name: what
// a component rebuilds its state from at start.
func (s *Store) ObjectsOfKind(kind wire.Kind) ([]Object, error) {
	var rows []objectRow
	if err := s.db.Where("kind = ?", string(kind)).Order("namespace, name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("listing objects of kind %s: %w", kind, err)
	}
	objects := make([]Object, 0, len(rows))
	for i := range rows {
		objects = append(objects, Object{Ref: rows[i].ref(), Body: rows[i].Body})
	}
	return objects, nil
}
