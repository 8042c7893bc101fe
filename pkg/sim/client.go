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

package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// qos is the quality of service of everything the simulator publishes and subscribes to, as
// the protocol asks: at least once.
const qos = 1

const (
	// ackTimeout bounds the wait for a PUBACK or SUBACK.
	ackTimeout = 10 * time.Second
	// connectTimeout bounds one connection attempt.
	connectTimeout = 10 * time.Second
	// maxRetryInterval caps the wait between connection attempts.
	maxRetryInterval = 5 * time.Second
	// offlineTimeout bounds the "offline" states sent on the way out.
	offlineTimeout = 2 * time.Second
)

// Run connects to the broker and drives the devices until ctx ends, then reports every device
// offline and disconnects. It returns nil when ctx ended, or an error when the broker refused the
// connection (bad credentials, say), which retrying would not fix. A broker that cannot be
// reached is retried until ctx ends, and a lost connection is remade for as long as Run runs.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	opts := paho.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(s.cfg.ClientID).
		// A persistent session: the broker keeps the subscriptions, and the deltas published
		// while the simulator reconnects, under the stable client id.
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxRetryInterval).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(ackTimeout).
		// In order: a membership change must be seen before the delta that follows it. The
		// handler never waits on the network, so order costs nothing.
		SetOrderMatters(true).
		// Every message goes through handle, also those a resumed session delivers before the
		// subscriptions are made again.
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { s.handle(m.Topic(), m.Payload()) }).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.connected.Store(false)
			s.log.line("disconnected", "broker", s.cfg.Broker, "error", err.Error())
		})
	if s.cfg.Username != "" {
		opts.SetUsername(s.cfg.Username).SetPassword(s.cfg.Password)
	}
	s.client = paho.NewClient(opts)
	if err := s.connect(ctx); err != nil {
		s.client.Disconnect(0)
		return err
	}
	if ctx.Err() != nil {
		s.client.Disconnect(0)
		return nil
	}
	ticker := time.NewTicker(s.cfg.ReportInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			s.goOffline()
			s.client.Disconnect(250)
			s.connected.Store(false)
			return nil
		case <-s.wake:
			s.publish(s.collect(false))
		case <-ticker.C:
			s.publish(s.collect(true))
		}
	}
}

// connect makes the first connection, retrying a broker that cannot be reached until ctx ends.
// paho's own retry is not used: it would retry a refusal forever too.
func (s *Simulator) connect(ctx context.Context) error {
	wait := 250 * time.Millisecond
	for {
		tok := s.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return nil
		}
		err := tok.Error()
		if err == nil {
			return nil
		}
		if ct, ok := tok.(*paho.ConnectToken); ok && refused(ct.ReturnCode()) {
			return fmt.Errorf("connecting to %s as %q: the broker refused: %w", s.cfg.Broker, s.cfg.ClientID, err)
		}
		s.log.line("unreachable", "broker", s.cfg.Broker, "error", err.Error(), "retry", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		wait = min(2*wait, maxRetryInterval)
	}
}

func refused(rc byte) bool {
	switch rc {
	case packets.ErrRefusedBadProtocolVersion, packets.ErrRefusedIDRejected,
		packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
		return true
	}
	return false
}

// onConnect runs on its own goroutine after every connection. It subscribes again, since a
// broker that lost the session (edgecore's embedded broker restarts with edgecore and keeps
// none) lost the subscriptions too, then asks for the membership: deltas are not retained, and
// what changed meanwhile is only in its answer.
func (s *Simulator) onConnect(c paho.Client) {
	filters := map[string]byte{}
	for _, f := range subscriptions(s.cfg.Node) {
		filters[f] = qos
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(ackTimeout) || tok.Error() != nil {
		// The connection most likely dropped again; the next connection tries again.
		s.log.line("subscribe-failed", "broker", s.cfg.Broker, "error", fmt.Sprint(tok.Error()))
		return
	}
	b, _ := json.Marshal(s.base(time.Now().UnixMilli()))
	pub := c.Publish(nodeTopic(s.cfg.Node, opMembershipGet), qos, false, b)
	if !pub.WaitTimeout(ackTimeout) || pub.Error() != nil {
		s.log.line("membership-get-failed", "broker", s.cfg.Broker, "error", fmt.Sprint(pub.Error()))
		return
	}
	s.connected.Store(true)
	s.log.line("connected", "broker", s.cfg.Broker, "client", s.cfg.ClientID, "node", s.cfg.Node, "protocol", s.cfg.Protocol)
}

// publish sends the messages, all at once and then waits for their PUBACKs, so that a thousand
// devices cost one round trip and not a thousand. Without a connection it sends nothing: the
// next tick reports again.
func (s *Simulator) publish(out []outgoing) {
	if len(out) == 0 {
		return
	}
	ok := make([]bool, len(out))
	if !s.client.IsConnectionOpen() {
		s.log.v(1, "not-sent", "messages", strconv.Itoa(len(out)), "why", "not connected")
		s.sent(out, ok)
		return
	}
	toks := make([]paho.Token, len(out))
	for i, o := range out {
		toks[i] = s.client.Publish(o.topic, qos, false, o.payload)
		s.log.v(2, "publish", "topic", o.topic, "payload", string(o.payload))
	}
	deadline := time.Now().Add(ackTimeout)
	failed := 0
	for i, tok := range toks {
		ok[i] = tok.WaitTimeout(time.Until(deadline)) && tok.Error() == nil
		if !ok[i] {
			failed++
		}
	}
	if failed > 0 {
		s.log.line("publish-failed", "messages", strconv.Itoa(failed), "of", strconv.Itoa(len(out)))
	}
	s.sent(out, ok)
}

// goOffline reports every device that was announced online as offline, on the way out.
func (s *Simulator) goOffline() {
	if !s.client.IsConnectionOpen() {
		return
	}
	now := time.Now().UnixMilli()
	s.mu.Lock()
	var toks []paho.Token
	for _, d := range s.devices {
		if !d.online {
			continue
		}
		b, _ := json.Marshal(stateUpdate{baseMessage: s.base(now), State: "offline"})
		toks = append(toks, s.client.Publish(deviceTopic(d.namespace, d.name, opStateUpdate), qos, false, b))
		d.online = false
	}
	s.mu.Unlock()
	deadline := time.Now().Add(offlineTimeout)
	for _, tok := range toks {
		tok.WaitTimeout(time.Until(deadline))
	}
}
