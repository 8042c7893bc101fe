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

package bus

import "testing"

func TestMatches(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		topic  string
		want   bool
	}{
		{name: "a literal filter matches the same topic", filter: "a/b", topic: "a/b", want: true},
		{name: "a literal filter does not match another topic", filter: "a/b", topic: "a/c", want: false},
		{name: "plus matches exactly one level", filter: "a/+/c", topic: "a/b/c", want: true},
		{name: "plus does not match two levels", filter: "a/+/c", topic: "a/b/x/c", want: false},
		{name: "plus matches an empty level", filter: "a/+/c", topic: "a//c", want: true},
		{name: "hash matches everything below", filter: "a/#", topic: "a/b/c", want: true},
		{name: "hash matches the parent level itself", filter: "a/#", topic: "a", want: true},
		{name: "a shorter filter does not match a longer topic", filter: "a/b", topic: "a/b/c", want: false},
		{name: "a longer filter does not match a shorter topic", filter: "a/b/c", topic: "a/b", want: false},
		{name: "hash in the middle is not a wildcard", filter: "a/#/c", topic: "a/b/c", want: false},
		{name: "a leading hash does not match a dollar topic", filter: "#", topic: "$hw/events/device/ns/d/twin/update", want: false},
		{name: "a leading plus does not match a dollar topic", filter: "+/events/#", topic: "$hw/events/x", want: false},
		{name: "a literal dollar prefix with wildcards matches a twin update",
			filter: "$hw/events/device/+/+/twin/update", topic: "$hw/events/device/default/lobby/twin/update", want: true},
		{name: "the twin update filter does not match the update result",
			filter: "$hw/events/device/+/+/twin/update", topic: "$hw/events/device/default/lobby/twin/update/result", want: false},
		{name: "a leading hash matches ordinary topics", filter: "#", topic: "a/b", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matches(tt.filter, tt.topic); got != tt.want {
				t.Errorf("matches(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}
