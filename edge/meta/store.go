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
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// busyTimeout is how long a write waits for another connection's write lock before it fails.
// Writes are short, so seconds mean something is wrong rather than merely busy.
const busyTimeout = 10 * time.Second

// maxOpenConns bounds the connection pool: SQLite serialises writers anyway, and an edge
// machine is small, but WAL lets a few readers go on while one writes.
const maxOpenConns = 4

// ErrInvalid is wrapped by errors about arguments the store refuses (an empty name, a body
// that is not JSON), so callers can tell a bad call from a failing disk.
var ErrInvalid = errors.New("invalid argument")

// Store is the edge's local database. It is safe for concurrent use.
type Store struct {
	db *gorm.DB

	// writeMu serialises this process's write transactions in Go. SQLite allows one writer
	// anyway, but a writer that finds the lock taken waits in SQLite's busy handler, which
	// sleeps in steps of up to 100 ms and lets a newcomer overtake it: under a burst of commits
	// one component could starve another for the length of the burst. A Go mutex queues the
	// writers and wakes the next one as soon as a commit returns.
	writeMu sync.Mutex
	// commits counts write transactions committed (Commits).
	commits atomic.Uint64
}

// Open opens (creating it if needed) the database at path and brings its schema up to date.
func Open(path string) (*Store, error) {
	// _txlock=immediate makes every transaction take the write lock when it begins: a deferred
	// transaction that reads and then writes can fail with SQLITE_BUSY at the upgrade, without
	// waiting for the busy timeout. synchronous=FULL because a report the edge has accepted
	// must survive a power cut, not only a crash of the process.
	dsn := fmt.Sprintf("%s?_journal_mode=WAL&_busy_timeout=%d&_foreign_keys=1&_txlock=immediate&_synchronous=FULL",
		path, busyTimeout.Milliseconds())
	return open(path, dsn, "wal")
}

// OpenInMemory opens a store that lives in memory only, under a name unique in the process. It
// is for hollow edge nodes in benchmarks, which run thousands of stores in one process: a file
// store holds several file descriptors, an in-memory one none. Everything else — schema,
// transactions, the outbox — is the same code as on disk; nothing survives Close.
func OpenInMemory(name string) (*Store, error) {
	dsn := fmt.Sprintf("file:%s?mode=memory&cache=shared&_busy_timeout=%d&_foreign_keys=1&_txlock=immediate",
		url.QueryEscape(name), busyTimeout.Milliseconds())
	return open("memory:"+name, dsn, "memory")
}

func open(path, dsn, journalMode string) (*Store, error) {
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{
		// Every write here is an explicit transaction already; gorm's implicit one would only
		// nest.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the edge database %s: %w", path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("opening the edge database %s: %w", path, err)
	}
	if journalMode == "memory" {
		// One connection, never closed while the store is open: an in-memory database lives as
		// long as a connection to it, and shared-cache locking (SQLITE_LOCKED, which ignores the
		// busy timeout) never arises with a single connection.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
	} else {
		sqlDB.SetMaxOpenConns(maxOpenConns)
	}
	s := &Store{db: db}
	if err := s.checkPragmas(journalMode); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("opening the edge database %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("migrating the edge database %s: %w", path, err)
	}
	return s, nil
}

// checkPragmas fails when the driver ignored the connection parameters, rather than running
// without WAL or foreign keys and finding out after a crash.
func (s *Store) checkPragmas(journalMode string) error {
	var mode string
	if err := s.db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		return fmt.Errorf("reading the journal mode: %w", err)
	}
	if mode != journalMode {
		return fmt.Errorf("journal mode is %q, not %s", mode, journalMode)
	}
	var fk int
	if err := s.db.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil {
		return fmt.Errorf("reading foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign keys are off")
	}
	return nil
}

// write runs fn in one write transaction, committed if fn returns nil. Every write of the
// store goes through it: one call, one commit, one fsync with synchronous=FULL, which is why
// callers that have several things to write give them to one Update.
func (s *Store) write(fn func(tx *gorm.DB) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.db.Transaction(fn); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// Commits returns how many write transactions this Store has committed since it was opened
// (schema migrations aside). Each is one synchronous write to disk, so it is what group commit
// saves and what tests count.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// Close closes the database. The store must not be used afterwards.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("closing the edge database: %w", err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("closing the edge database: %w", err)
	}
	return nil
}
