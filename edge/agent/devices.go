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
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/bus"
	"github.com/edgetwin/edgetwin/edge/config"
	"github.com/edgetwin/edgetwin/edge/twin"
)

// publishQueue is how many outgoing MQTT messages may wait while the broker is slow.
const publishQueue = 4096

// answerLanes is how many lanes carry the answers to mappers' updates (results and documents),
// beside the one lane of deltas and membership.
const answerLanes = 4

// errPublishQueueFull is returned when the broker has not kept up with publishQueue messages.
var errPublishQueueFull = errors.New("the MQTT publish queue is full")

// asyncBus adapts the EventBus to DeviceTwin. The bus's handlers must not publish (the
// acknowledgement they would wait for can be stuck behind them), and DeviceTwin answers some
// requests from its handlers, so publishes go through queues, each drained in order by its own
// goroutine. A full queue is an error the caller counts; deltas are re-sent level-based anyway.
//
// Every publish waits for the broker's PUBACK, so one queue would make a desired value's delta
// wait behind every answer to a burst of reports (two messages per report). Deltas, membership
// and the answers to gets therefore have a lane of their own, in order (a mapper learns of a
// device before its delta); the answers to updates and states go in answerLanes more lanes,
// by device, so each device's answers keep their order.
type asyncBus struct {
	bus     *bus.Bus
	lanes   []chan message
	dropped atomic.Uint64
}

type message struct {
	topic   string
	payload []byte
}

func newAsyncBus(b *bus.Bus) *asyncBus {
	a := &asyncBus{bus: b}
	for range 1 + answerLanes {
		a.lanes = append(a.lanes, make(chan message, publishQueue/(1+answerLanes)))
	}
	return a
}

// lane picks the queue of a topic: 0 for deltas and everything that is not an answer to an
// update, one of the others by device for the answers.
func (a *asyncBus) lane(topic string) chan message {
	ns, name, op, ok := twin.ParseDeviceTopic(topic)
	if !ok || (op != twin.OpTwinUpdateResult && op != twin.OpTwinUpdateDocument && op != twin.OpStateUpdateResult) {
		return a.lanes[0]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ns + "/" + name))
	return a.lanes[1+int(h.Sum32()%answerLanes)]
}

func (a *asyncBus) Publish(topic string, payload []byte) error {
	select {
	case a.lane(topic) <- message{topic: topic, payload: payload}:
		return nil
	default:
		a.dropped.Add(1)
		return errPublishQueueFull
	}
}

func (a *asyncBus) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	return a.bus.Subscribe(filter, handler)
}

// SubscribeAcked lets DeviceTwin acknowledge a mapper's report after the commit that holds it
// (twin.AckBus).
func (a *asyncBus) SubscribeAcked(filter string, handler func(topic string, payload []byte, ack func())) error {
	return a.bus.SubscribeAcked(filter, handler)
}

// run publishes queued messages until ctx ends, one goroutine per lane; a publish the bus
// refuses (not connected) is logged and dropped, since the twin resends its deltas when the
// bus reconnects.
func (a *asyncBus) run(ctx context.Context, log logr.Logger) {
	var wg sync.WaitGroup
	for _, lane := range a.lanes {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-lane:
					if err := a.bus.Publish(m.topic, m.payload); err != nil {
						log.V(1).Info("Dropping an MQTT message", "topic", m.topic, "err", err.Error())
					}
				}
			}
		})
	}
	wg.Wait()
}

// newBus builds the EventBus from the node's config.
func newBus(cfg *config.Config, log logr.Logger) (*bus.Bus, error) {
	return bus.New(bus.Config{Mode: cfg.Broker.Mode, Address: cfg.Broker.Address, Username: cfg.Broker.Username,
		Password: cfg.Broker.Password, ClientID: "edgecore-" + cfg.NodeName, Logger: log})
}

// runDevices runs the EventBus and DeviceTwin until ctx ends, and returns only once they have
// stopped using the store. The bus connects in the background: edgecore keeps syncing with the
// cloud while the broker is away, and the twin re-sends its deltas every time the bus
// (re)connects.
func runDevices(ctx context.Context, b *bus.Bus, ab *asyncBus, t *twin.DeviceTwin, log logr.Logger) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ab.run(ctx, log.WithName("bus")) })
	// Start subscribes (the bus remembers subscriptions made before it connects) and runs the
	// twin's publisher in the background until ctx ends.
	if err := t.Start(ctx); err != nil {
		log.Error(err, "DeviceTwin did not start; mappers are not served")
	} else {
		defer func() { <-t.Done() }()
	}
	wg.Go(func() {
		if err := b.Start(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			log.Error(err, "The MQTT broker connection failed")
		}
	})
	// Watch for (re)connections: the broker may have lost what the mappers were told.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	wasConnected := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := b.Connected()
			if now && !wasConnected {
				t.Resend()
			}
			wasConnected = now
		}
	}
}
