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
	"gorm.io/gorm/clause"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Object is one object the cloud sent, as the store holds it.
type Object struct {
	// Ref names the object; Ref.Version is the content version stored.
	Ref wire.ObjectRef
	// Body is the object's content, as JSON.
	Body []byte
}

// PutObject stores the latest content of an object, replacing what was held. ref.Version is
// stored with it: it is what the next Hello tells the cloud.
func (s *Store) PutObject(ref wire.ObjectRef, body []byte) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	if ref.Version == "" {
		return fmt.Errorf("%w: object %s has no version", ErrInvalid, ref.Key())
	}
	return s.write(func(tx *gorm.DB) error { return putObject(tx, ref, body) })
}

// PutObject is Store.PutObject inside this transaction: the object is held only if the
// transaction commits.
func (t *Tx) PutObject(ref wire.ObjectRef, body []byte) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	if ref.Version == "" {
		return fmt.Errorf("%w: object %s has no version", ErrInvalid, ref.Key())
	}
	return putObject(t.tx, ref, body)
}

func putObject(tx *gorm.DB, ref wire.ObjectRef, body []byte) error {
	row := objectRow{Kind: string(ref.Kind), Namespace: ref.Namespace, Name: ref.Name, Version: ref.Version, Body: body}
	if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("storing object %s: %w", ref, err)
	}
	return nil
}

// DeleteObject removes an object. Removing an object the store does not hold is not an error:
// the cloud's delete is level-based, and may arrive again after a reconnect.
func (s *Store) DeleteObject(ref wire.ObjectRef) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	return s.write(func(tx *gorm.DB) error { return deleteObject(tx, ref) })
}

// DeleteObject is Store.DeleteObject inside this transaction.
func (t *Tx) DeleteObject(ref wire.ObjectRef) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	return deleteObject(t.tx, ref)
}

func deleteObject(tx *gorm.DB, ref wire.ObjectRef) error {
	err := tx.Where("kind = ? AND namespace = ? AND name = ?", string(ref.Kind), ref.Namespace, ref.Name).
		Delete(&objectRow{}).Error
	if err != nil {
		return fmt.Errorf("deleting object %s: %w", ref.Key(), err)
	}
	return nil
}

// GetObject returns the object named by ref (its version is ignored) and whether the store
// holds it.
func (s *Store) GetObject(ref wire.ObjectRef) (Object, bool, error) {
	var row objectRow
	err := s.db.Where("kind = ? AND namespace = ? AND name = ?", string(ref.Kind), ref.Namespace, ref.Name).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return Object{}, false, nil
	case err != nil:
		return Object{}, false, fmt.Errorf("reading object %s: %w", ref.Key(), err)
	}
	return Object{Ref: row.ref(), Body: row.Body}, true, nil
}

// Objects returns every object held, with its version, ordered by kind, namespace and name:
// what the Hello tells the cloud.
func (s *Store) Objects() ([]wire.ObjectRef, error) {
	var rows []objectRow
	err := s.db.Select("kind", "namespace", "name", "version").Order("kind, namespace, name").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("listing objects: %w", err)
	}
	refs := make([]wire.ObjectRef, 0, len(rows))
	for i := range rows {
		refs = append(refs, rows[i].ref())
	}
	return refs, nil
}

func (r *objectRow) ref() wire.ObjectRef {
	return wire.ObjectRef{Kind: wire.Kind(r.Kind), Namespace: r.Namespace, Name: r.Name, Version: r.Version}
}

func checkRef(ref wire.ObjectRef) error {
	if ref.Kind == "" || ref.Name == "" {
		return fmt.Errorf("%w: object %q needs a kind and a name", ErrInvalid, ref.Key())
	}
	return nil
}
