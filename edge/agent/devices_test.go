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

package agent

import (
	"fmt"
	"testing"

	"github.com/edgetwin/edgetwin/edge/twin"
)

func TestDeltasNeverQueueBehindTheAnswersToReports(t *testing.T) {
	a := newAsyncBus(nil)
	ordered := a.lanes[0]
	for _, topic := range []string{
		twin.DeviceTopic("ns", "d", twin.OpTwinUpdateDelta),
		twin.NodeTopic("edge-1", twin.OpMembershipUpdated),
		twin.NodeTopic("edge-1", twin.OpMembershipGetResult),
		twin.DeviceTopic("ns", "d", twin.OpTwinGetResult),
	} {
		if a.lane(topic) != ordered {
			t.Errorf("%s is not in the lane of deltas and membership, which keeps their order", topic)
		}
	}
	used := map[chan message]bool{}
	for i := range 50 {
		name := fmt.Sprintf("d%d", i)
		lane := a.lane(twin.DeviceTopic("ns", name, twin.OpTwinUpdateResult))
		if lane == ordered {
			t.Fatalf("the answer to %s's update is in the lane of deltas", name)
		}
		for _, op := range []string{twin.OpTwinUpdateDocument, twin.OpStateUpdateResult} {
			if a.lane(twin.DeviceTopic("ns", name, op)) != lane {
				t.Errorf("%s of %s is in another lane than its update result: its answers could reorder", op, name)
			}
		}
		used[lane] = true
	}
	if len(used) < 2 {
		t.Errorf("50 devices' answers share %d lane(s), want them spread", len(used))
	}
}
