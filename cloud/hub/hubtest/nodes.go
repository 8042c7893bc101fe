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

// Package hubtest holds small real implementations of CloudHub's interfaces for tests of
// packages that plug into the hub.
package hubtest

import (
	"context"
	"fmt"
	"sync"
)

// Nodes is an in-memory hub.Authorizer: the EdgeNodes that exist, by name, with their UIDs. It
// refuses with the same wording as cloudcore's EdgeNode check.
type Nodes struct {
	mu   sync.Mutex
	uids map[string]string
}

// NewNodes returns an Authorizer that knows no node.
func NewNodes() *Nodes { return &Nodes{uids: map[string]string{}} }

// Set makes the node exist with the UID; an empty UID deletes it.
func (n *Nodes) Set(name, uid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if uid == "" {
		delete(n.uids, name)
		return
	}
	n.uids[name] = uid
}

// Authorize implements hub.Authorizer.
func (n *Nodes) Authorize(_ context.Context, name, uid string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	got, ok := n.uids[name]
	switch {
	case !ok:
		return fmt.Errorf("EdgeNode %s does not exist", name)
	case got != uid:
		return fmt.Errorf("the certificate was issued for an earlier EdgeNode %s", name)
	}
	return nil
}
