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
	"path/filepath"
	"testing"
)

// openStore opens a store in a fresh file that the test closes when it ends.
func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edge.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// reopen closes s and opens the file again, as a restart of edgecore does.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

func TestOpenSetsUpTheDatabase(t *testing.T) {
	s, path := openStore(t)
	var mode string
	if err := s.db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
		t.Errorf("journal mode = %q, %v; want wal", mode, err)
	}
	var timeout int
	if err := s.db.Raw("PRAGMA busy_timeout").Scan(&timeout).Error; err != nil || timeout == 0 {
		t.Errorf("busy timeout = %d, %v; want one set", timeout, err)
	}
	var synchronous int
	if err := s.db.Raw("PRAGMA synchronous").Scan(&synchronous).Error; err != nil || synchronous != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", synchronous, err)
	}
	var row schemaRow
	if err := s.db.Take(&row).Error; err != nil || row.Version != SchemaVersion() {
		t.Errorf("schema version = %d, %v; want %d", row.Version, err, SchemaVersion())
	}

	s = reopen(t, s, path)
	if err := s.db.Take(&row).Error; err != nil || row.Version != SchemaVersion() {
		t.Errorf("schema version after reopening = %d, %v; want %d", row.Version, err, SchemaVersion())
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	s, path := openStore(t)
	if err := s.db.Model(&schemaRow{}).Where("id = 1").Update("version", SchemaVersion()+1).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(path); err == nil {
		_ = s2.Close()
		t.Fatal("Open accepted a database from a newer build")
	}
}

func TestAnInMemoryStoreIsAFullStoreThatNothingOutlives(t *testing.T) {
	s, err := OpenInMemory("t-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenInMemory("t-other-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	seq, err := s.Enqueue("DeviceTwin", "default", "d1", "temperature", []byte(`{"value":"1"}`))
	if err != nil || seq != 1 {
		t.Fatalf("Enqueue = %d, %v", seq, err)
	}
	// Two in-memory stores are separate databases.
	if n, err := other.PendingCount(); err != nil || n != 0 {
		t.Fatalf("the other store holds %d reports (%v); want 0", n, err)
	}
	if n, err := s.PendingCount(); err != nil || n != 1 {
		t.Fatalf("PendingCount = %d, %v; want 1", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenInMemory("t-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = again.Close() }()
	if n, err := again.PendingCount(); err != nil || n != 0 {
		t.Fatalf("a reopened in-memory store holds %d reports (%v); want none", n, err)
	}
}
