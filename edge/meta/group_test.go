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
	"sync"
	"testing"
)

func TestObjectsReportsAndAcksWrittenThroughOneTxAreOneCommit(t *testing.T) {
	s, path := openStore(t)
	first, err := s.Enqueue("DeviceTwin", "ns", "a", "p", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	before := s.Commits()
	err = s.Update(func(tx *Tx) error {
		for i := range 10 {
			if err := tx.PutObject(ref("ns", fmt.Sprint(i), "v1"), []byte(`{}`)); err != nil {
				return err
			}
		}
		if err := tx.DeleteObject(ref("ns", "3", "")); err != nil {
			return err
		}
		if err := tx.Ack(first); err != nil {
			return err
		}
		_, err := tx.Enqueue("DeviceTwin", "ns", "b", "p", []byte(`{}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Commits() - before; got != 1 {
		t.Errorf("one Update took %d commits, want 1", got)
	}
	s = reopen(t, s, path)
	refs, err := s.Objects()
	if err != nil || len(refs) != 9 {
		t.Errorf("after a restart the store holds %v (%v), want 9 objects", refs, err)
	}
	pending, err := s.Pending(0, 0)
	if err != nil || len(pending) != 1 || pending[0].Name != "b" || pending[0].Seq <= first {
		t.Errorf("after a restart the outbox holds %+v (%v), want only b, numbered after the acked report", pending, err)
	}
}

func TestAnUpdateThatFailsLeavesNothingAndCommitsNothing(t *testing.T) {
	s, path := openStore(t)
	before := s.Commits()
	boom := errors.New("crash before the commit")
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutObject(ref("ns", "a", "v1"), []byte(`{}`)); err != nil {
			return err
		}
		if _, err := tx.Enqueue("DeviceTwin", "ns", "a", "p", []byte(`{}`)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	if got := s.Commits() - before; got != 0 {
		t.Errorf("%d commits counted for a rolled-back Update", got)
	}
	s = reopen(t, s, path)
	if refs, _ := s.Objects(); len(refs) != 0 {
		t.Errorf("the store holds %v after a rolled-back Update", refs)
	}
	if last, _ := s.LastSeq(); last != 0 {
		t.Errorf("the sequence counter is %d after a rolled-back Update, want 0", last)
	}
}

// Writers from several goroutines queue on the store's own lock rather than in SQLite's busy
// handler: none fails, and each write is one commit.
func TestConcurrentWritersEachCommitOnce(t *testing.T) {
	s, _ := openStore(t)
	before := s.Commits()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Enqueue("DeviceTwin", "ns", fmt.Sprint(w), fmt.Sprint(i), []byte(`{}`)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.Commits() - before; got != writers*each {
		t.Errorf("%d commits for %d writes, want one each", got, writers*each)
	}
	if last, _ := s.LastSeq(); last != writers*each {
		t.Errorf("last sequence %d, want %d", last, writers*each)
	}
}
