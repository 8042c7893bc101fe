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
	"slices"
	"testing"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

func ref(ns, name, version string) wire.ObjectRef {
	return wire.ObjectRef{Kind: wire.KindDevice, Namespace: ns, Name: name, Version: version}
}

func TestObjectsRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		puts    []Object
		deletes []wire.ObjectRef
		want    []Object
	}{{
		name: "an object put is held with its version",
		puts: []Object{{Ref: ref("ns", "a", "v1"), Body: []byte(`{"a":1}`)}},
		want: []Object{{Ref: ref("ns", "a", "v1"), Body: []byte(`{"a":1}`)}},
	}, {
		name: "a second put replaces the content and the version",
		puts: []Object{
			{Ref: ref("ns", "a", "v1"), Body: []byte(`{"a":1}`)},
			{Ref: ref("ns", "a", "v2"), Body: []byte(`{"a":2}`)},
		},
		want: []Object{{Ref: ref("ns", "a", "v2"), Body: []byte(`{"a":2}`)}},
	}, {
		name: "objects are listed by namespace and name",
		puts: []Object{
			{Ref: ref("ns2", "a", "v1"), Body: []byte(`{}`)},
			{Ref: ref("ns1", "b", "v1"), Body: []byte(`{}`)},
			{Ref: ref("", "c", "v1"), Body: []byte(`{}`)},
			{Ref: ref("ns1", "a", "v1"), Body: []byte(`{}`)},
		},
		want: []Object{
			{Ref: ref("", "c", "v1"), Body: []byte(`{}`)},
			{Ref: ref("ns1", "a", "v1"), Body: []byte(`{}`)},
			{Ref: ref("ns1", "b", "v1"), Body: []byte(`{}`)},
			{Ref: ref("ns2", "a", "v1"), Body: []byte(`{}`)},
		},
	}, {
		name:    "a deleted object is gone",
		puts:    []Object{{Ref: ref("ns", "a", "v1"), Body: []byte(`{}`)}, {Ref: ref("ns", "b", "v1"), Body: []byte(`{}`)}},
		deletes: []wire.ObjectRef{ref("ns", "a", "")},
		want:    []Object{{Ref: ref("ns", "b", "v1"), Body: []byte(`{}`)}},
	}, {
		name:    "deleting an object the store does not hold is not an error",
		deletes: []wire.ObjectRef{ref("ns", "absent", "")},
	}, {
		name:    "the same name in another namespace is another object",
		puts:    []Object{{Ref: ref("ns1", "a", "v1"), Body: []byte(`{}`)}, {Ref: ref("ns2", "a", "v1"), Body: []byte(`{}`)}},
		deletes: []wire.ObjectRef{ref("ns1", "a", "v1")},
		want:    []Object{{Ref: ref("ns2", "a", "v1"), Body: []byte(`{}`)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openStore(t)
			for _, o := range tt.puts {
				if err := s.PutObject(o.Ref, o.Body); err != nil {
					t.Fatalf("PutObject(%s): %v", o.Ref, err)
				}
			}
			for _, r := range tt.deletes {
				if err := s.DeleteObject(r); err != nil {
					t.Fatalf("DeleteObject(%s): %v", r, err)
				}
			}
			// What is held must survive a restart.
			s = reopen(t, s, path)
			refs, err := s.Objects()
			if err != nil {
				t.Fatal(err)
			}
			wantRefs := []wire.ObjectRef{}
			for _, o := range tt.want {
				wantRefs = append(wantRefs, o.Ref)
			}
			if !slices.Equal(refs, wantRefs) {
				t.Errorf("Objects() = %v, want %v", refs, wantRefs)
			}
			for _, w := range tt.want {
				got, found, err := s.GetObject(ref(w.Ref.Namespace, w.Ref.Name, ""))
				if err != nil || !found {
					t.Fatalf("GetObject(%s) = found %v, %v", w.Ref, found, err)
				}
				if got.Ref != w.Ref || string(got.Body) != string(w.Body) {
					t.Errorf("GetObject(%s) = %s %s, want %s %s", w.Ref, got.Ref, got.Body, w.Ref, w.Body)
				}
			}
			for _, r := range tt.deletes {
				if _, found, err := s.GetObject(r); err != nil || found {
					t.Errorf("GetObject(%s) after delete = found %v, %v", r, found, err)
				}
			}
		})
	}
}

func TestPutObjectRefusesIncompleteRefs(t *testing.T) {
	tests := []struct {
		name string
		ref  wire.ObjectRef
	}{
		{name: "an object without a name is refused", ref: ref("ns", "", "v1")},
		{name: "an object without a kind is refused", ref: wire.ObjectRef{Name: "a", Version: "v1"}},
		{name: "an object without a version is refused", ref: ref("ns", "a", "")},
	}
	s, _ := openStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutObject(tt.ref, []byte(`{}`)); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutObject(%s) = %v, want ErrInvalid", tt.ref, err)
			}
		})
	}
}
