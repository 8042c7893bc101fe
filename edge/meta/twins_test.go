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
	"reflect"
	"testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// errRollback is returned by a test's transaction to roll it back on purpose, as a crash before
// the commit would.
var errRollback = errors.New("rolled back on purpose")

func TestTwinsAndDeviceStatesSurviveAReopen(t *testing.T) {
	s, path := openStore(t)
	want := []Twin{
		{Namespace: "default", Name: "lamp", Property: "brightness", UID: "u1", Desired: new("40"), DesiredVersion: "v1",
			DesiredAt: 1000, Reported: new("35"), ReportedAt: 2000},
		{Namespace: "default", Name: "lamp", Property: "power", UID: "u1", DesiredVersion: "v1", DesiredAt: 1000},
	}
	err := s.Update(func(tx *Tx) error {
		for _, tw := range want {
			if err := tx.PutTwin(tw); err != nil {
				return err
			}
		}
		return tx.PutDeviceState(DeviceState{Namespace: "default", Name: "lamp", State: "online", At: 3000})
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	got, err := s.Twins()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Twins() = %+v, %v; want %+v", got, err, want)
	}
	states, err := s.DeviceStates()
	if err != nil || len(states) != 1 || states[0].State != "online" || states[0].At != 3000 {
		t.Errorf("DeviceStates() = %+v, %v", states, err)
	}
}

func TestPutTwinReplacesTheRowOfTheSameProperty(t *testing.T) {
	s, _ := openStore(t)
	for _, v := range []string{"1", "2"} {
		err := s.Update(func(tx *Tx) error {
			return tx.PutTwin(Twin{Namespace: "ns", Name: "d", Property: "p", Reported: new(v), ReportedAt: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Twins()
	if err != nil || len(got) != 1 || *got[0].Reported != "2" {
		t.Errorf("Twins() = %+v, %v; want one row reporting 2", got, err)
	}
}

// A reported value and its outbox report are written in one transaction: if it does not
// commit (a crash, a full disk), neither is there and no sequence was used up.
func TestARolledBackUpdateLeavesNeitherTheTwinNorTheReport(t *testing.T) {
	s, _ := openStore(t)
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutTwin(Twin{Namespace: "ns", Name: "d", Property: "p", Reported: new("1")}); err != nil {
			return err
		}
		if _, err := tx.Enqueue("DeviceTwin", "ns", "d", "p", []byte(`{}`)); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Update = %v, want the transaction's error", err)
	}
	twins, _ := s.Twins()
	n, _ := s.PendingCount()
	last, _ := s.LastSeq()
	if len(twins) != 0 || n != 0 || last != 0 {
		t.Errorf("after a rollback: %d twins, %d pending, last seq %d; want nothing", len(twins), n, last)
	}
}

func TestEnqueueInATransactionCoalescesLikeEnqueue(t *testing.T) {
	s, _ := openStore(t)
	for _, body := range []string{`{"v":1}`, `{"v":2}`} {
		err := s.Update(func(tx *Tx) error {
			_, err := tx.Enqueue("DeviceTwin", "ns", "d", "p", []byte(body))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pending, err := s.Pending(0, 0)
	if err != nil || len(pending) != 1 || string(pending[0].Body) != `{"v":2}` || pending[0].Seq != 2 {
		t.Errorf("Pending = %+v, %v; want the newest report alone, seq 2", pending, err)
	}
	err = s.Update(func(tx *Tx) error {
		_, err := tx.Enqueue("DeviceTwin", "ns", "d", "p", []byte(`not json`))
		return err
	})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid body in a transaction: %v, want ErrInvalid", err)
	}
}

func TestDeleteDeviceRemovesItsTwinsAndStateOnly(t *testing.T) {
	s, _ := openStore(t)
	err := s.Update(func(tx *Tx) error {
		for _, name := range []string{"a", "b"} {
			for _, p := range []string{"x", "y"} {
				if err := tx.PutTwin(Twin{Namespace: "ns", Name: name, Property: p}); err != nil {
					return err
				}
			}
			if err := tx.PutDeviceState(DeviceState{Namespace: "ns", Name: name, State: "ok"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.DeleteDevice("ns", "a") }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.DeleteTwin("ns", "b", "y") }); err != nil {
		t.Fatal(err)
	}
	twins, _ := s.Twins()
	states, _ := s.DeviceStates()
	if len(twins) != 1 || twins[0].Name != "b" || twins[0].Property != "x" || len(states) != 1 || states[0].Name != "b" {
		t.Errorf("left %+v and %+v; want b's x twin and b's state", twins, states)
	}
}

func TestObjectsOfKindReturnsBodiesOfThatKindOnly(t *testing.T) {
	s, _ := openStore(t)
	for _, ref := range []wire.ObjectRef{
		{Kind: wire.KindDevice, Namespace: "ns", Name: "b", Version: "1"},
		{Kind: wire.KindDevice, Namespace: "ns", Name: "a", Version: "2"},
		{Kind: "Other", Namespace: "ns", Name: "c", Version: "3"},
	} {
		if err := s.PutObject(ref, []byte(`{"n":"`+ref.Name+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.ObjectsOfKind(wire.KindDevice)
	if err != nil || len(objs) != 2 || objs[0].Ref.Name != "a" || string(objs[1].Body) != `{"n":"b"}` {
		t.Errorf("ObjectsOfKind = %+v, %v", objs, err)
	}
}

// An edge that ran schema version 1 gets the twin tables when it upgrades, and keeps what it
// held.
func TestUpgradingFromVersion1AddsTheTwinTablesAndKeepsTheObjects(t *testing.T) {
	s, path := openStore(t)
	ref := wire.ObjectRef{Kind: wire.KindDevice, Namespace: "ns", Name: "d", Version: "1"}
	if err := s.PutObject(ref, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"DROP TABLE twins", "DROP TABLE device_states", "UPDATE schema_version SET version = 1"} {
		if err := s.db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s, path)
	if _, ok, err := s.GetObject(ref); !ok || err != nil {
		t.Errorf("the object is gone after the upgrade: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutTwin(Twin{Namespace: "ns", Name: "d", Property: "p"}) }); err != nil {
		t.Errorf("the twins table is missing after the upgrade: %v", err)
	}
	var row schemaRow
	if err := s.db.Take(&row).Error; err != nil || row.Version != 2 {
		t.Errorf("schema version = %d, %v; want 2", row.Version, err)
	}
}
