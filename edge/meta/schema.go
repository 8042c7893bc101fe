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
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// The rows the store keeps. Their fields are the current schema; a change to them needs a new
// migration step below, since the steps already run on deployed edges never run again.

// objectRow is one object the cloud sent.
type objectRow struct {
	Kind      string `gorm:"primaryKey"`
	Namespace string `gorm:"primaryKey"`
	Name      string `gorm:"primaryKey"`
	Version   string `gorm:"not null"`
	Body      []byte `gorm:"not null"`
}

func (objectRow) TableName() string { return "objects" }

// outboxRow is one report waiting for the cloud's ack. The unique index is what coalesces: at
// most one pending report per (kind, namespace, name, key).
type outboxRow struct {
	Seq       uint64 `gorm:"primaryKey;autoIncrement:false"`
	Kind      string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:1"`
	Namespace string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:2"`
	Name      string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:3"`
	Key       string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:4"`
	Body      []byte `gorm:"not null"`
}

func (outboxRow) TableName() string { return "outbox" }

// counterRow is a named number the store keeps across restarts.
type counterRow struct {
	Name  string `gorm:"primaryKey"`
	Value uint64 `gorm:"not null"`
}

func (counterRow) TableName() string { return "counters" }

// The counters.
const (
	// counterLastSeq is the last report sequence handed out. It lives in the database, not in
	// the outbox's max(seq), so it keeps growing after every report has been acked and removed.
	counterLastSeq = "last_seq"
	// counterAckedSeq is the highest sequence the cloud has acknowledged.
	counterAckedSeq = "acked_seq"
)

// schemaRow records the schema version, in one row.
type schemaRow struct {
	ID      int `gorm:"primaryKey;autoIncrement:false"`
	Version int `gorm:"not null"`
}

func (schemaRow) TableName() string { return "schema_version" }

// A migration step brings the schema from version i to i+1 (i its index in migrations). Steps are
// only ever appended: a deployed edge runs the ones it has not run yet, each in one transaction
// with the version bump, so a crash mid-migration leaves the previous version intact.
var migrations = []func(tx *gorm.DB) error{
	migrateV1,
	migrateV2,
}

// migrateV1 creates the first schema. It has frozen copies of the rows so that later changes to
// them cannot change what version 1 is.
func migrateV1(tx *gorm.DB) error {
	type objects struct {
		Kind      string `gorm:"primaryKey"`
		Namespace string `gorm:"primaryKey"`
		Name      string `gorm:"primaryKey"`
		Version   string `gorm:"not null"`
		Body      []byte `gorm:"not null"`
	}
	type outbox struct {
		Seq       uint64 `gorm:"primaryKey;autoIncrement:false"`
		Kind      string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:1"`
		Namespace string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:2"`
		Name      string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:3"`
		Key       string `gorm:"not null;uniqueIndex:outbox_coalesce,priority:4"`
		Body      []byte `gorm:"not null"`
	}
	type counters struct {
		Name  string `gorm:"primaryKey"`
		Value uint64 `gorm:"not null"`
	}
	tables := []struct {
		name  string
		model any
	}{{"objects", &objects{}}, {"outbox", &outbox{}}, {"counters", &counters{}}}
	for _, t := range tables {
		if err := tx.Table(t.name).AutoMigrate(t.model); err != nil {
			return fmt.Errorf("creating table %s: %w", t.name, err)
		}
	}
	for _, name := range []string{counterLastSeq, counterAckedSeq} {
		if err := tx.Table("counters").Create(&counters{Name: name}).Error; err != nil {
			return fmt.Errorf("creating counter %s: %w", name, err)
		}
	}
	return nil
}

// twinRow is one property of a device as DeviceTwin keeps it: the desired value from the Device
// object, the content version it came with, and the value the mapper last reported.
type twinRow struct {
	Namespace      string  `gorm:"primaryKey"`
	Name           string  `gorm:"primaryKey"`
	Property       string  `gorm:"primaryKey"`
	UID            string  `gorm:"not null"`
	Desired        *string `gorm:""`
	DesiredVersion string  `gorm:"not null"`
	DesiredAt      int64   `gorm:"not null"`
	Reported       *string `gorm:""`
	ReportedAt     int64   `gorm:"not null"`
}

func (twinRow) TableName() string { return "twins" }

// deviceStateRow is the state a device's mapper last reported.
type deviceStateRow struct {
	Namespace string `gorm:"primaryKey"`
	Name      string `gorm:"primaryKey"`
	State     string `gorm:"not null"`
	At        int64  `gorm:"not null"`
}

func (deviceStateRow) TableName() string { return "device_states" }

// migrateV2 adds DeviceTwin's tables: twins (per device property) and device_states. Like
// migrateV1 it has frozen copies of the rows.
func migrateV2(tx *gorm.DB) error {
	type twins struct {
		Namespace      string  `gorm:"primaryKey"`
		Name           string  `gorm:"primaryKey"`
		Property       string  `gorm:"primaryKey"`
		UID            string  `gorm:"not null"`
		Desired        *string `gorm:""`
		DesiredVersion string  `gorm:"not null"`
		DesiredAt      int64   `gorm:"not null"`
		Reported       *string `gorm:""`
		ReportedAt     int64   `gorm:"not null"`
	}
	type deviceStates struct {
		Namespace string `gorm:"primaryKey"`
		Name      string `gorm:"primaryKey"`
		State     string `gorm:"not null"`
		At        int64  `gorm:"not null"`
	}
	if err := tx.Table("twins").AutoMigrate(&twins{}); err != nil {
		return fmt.Errorf("creating table twins: %w", err)
	}
	if err := tx.Table("device_states").AutoMigrate(&deviceStates{}); err != nil {
		return fmt.Errorf("creating table device_states: %w", err)
	}
	return nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

// migrate runs the steps the database has not run yet.
func migrate(db *gorm.DB) error {
	if err := db.AutoMigrate(&schemaRow{}); err != nil {
		return fmt.Errorf("creating the schema version table: %w", err)
	}
	for {
		done, err := migrateOne(db)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne runs the next step, reading the version inside the step's transaction so that two
// processes opening one file cannot both run it.
func migrateOne(db *gorm.DB) (done bool, err error) {
	err = db.Transaction(func(tx *gorm.DB) error {
		var row schemaRow
		err := tx.Where("id = ?", 1).Take(&row).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			row = schemaRow{ID: 1}
		case err != nil:
			return fmt.Errorf("reading the schema version: %w", err)
		}
		if row.Version > len(migrations) {
			return fmt.Errorf("the database has schema version %d, newer than this build's %d", row.Version, len(migrations))
		}
		if row.Version == len(migrations) {
			done = true
			return nil
		}
		if err := migrations[row.Version](tx); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", row.Version+1, err)
		}
		row.Version++
		if err := tx.Save(&row).Error; err != nil {
			return fmt.Errorf("recording schema version %d: %w", row.Version, err)
		}
		return nil
	})
	return done, err
}
