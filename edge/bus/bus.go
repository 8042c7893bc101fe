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

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/go-logr/logr"

	"github.com/edgetwin/edgetwin/edge/config"
)

// qos is the quality of service of every publish and subscription: at least once. The twin
// protocol tolerates duplicates (results echo event ids, reports carry timestamps), not losses.
const qos = 1

const (
	// ackTimeout bounds the wait for a PUBACK or a SUBACK.
	ackTimeout = 10 * time.Second
	// connectTimeout bounds one connection attempt, including the CONNACK.
	connectTimeout = 10 * time.Second
	// maxRetryInterval caps the wait between connection attempts. The broker is on the node or
	// next to it, so a short cap gets mappers' reports flowing soon after it comes back.
	maxRetryInterval = 10 * time.Second
	// keepAlive is the MQTT keepalive; paho pings when the link is idle for this long.
	keepAlive = 30 * time.Second
)

// ErrNotConnected is returned by Publish and Subscribe when the client has no connection to the
// broker at the moment (before Start, while reconnecting, after Close).
var ErrNotConnected = errors.New("not connected to the mqtt broker")

// ErrRefused is returned by Start when the broker answers the CONNECT with a refusal (bad
// credentials, not authorised, client id rejected): retrying would not help.
var ErrRefused = errors.New("mqtt broker refused the connection")

// Config configures the EventBus.
type Config struct {
	// Mode is config.BrokerInternal (run the broker in edgecore) or config.BrokerExternal.
	Mode string
	// Address is host:port: where the internal broker listens (loopback, by default
	// config.DefaultBrokerAddress; port 0 picks a free port), or the external broker to dial.
	Address string
	// AllowNonLoopback lets the internal broker listen on an address other than loopback. Its
	// broker has no authentication, so anyone who reaches the address can publish twin updates.
	AllowNonLoopback bool
	// Username and Password authenticate to an external broker (optional).
	Username, Password string
	// TLS, when set, dials the external broker over TLS.
	TLS *tls.Config
	// ClientID must be stable for the node (for example "edgecore-<node>"): the broker keeps
	// the session, its subscriptions and the QoS 1 messages queued for it, under this id.
	ClientID string
	// Logger receives the bus's logs and, in internal mode, the broker's warnings.
	Logger logr.Logger
}

// Handler receives a message for a subscription. Handlers run one at a time on paho's
// dispatch goroutine, in the order the broker delivered the messages, and the message is
// acknowledged when the handler returns. So a handler must return quickly and must not call
// Publish itself (Publish waits for a PUBACK that a blocked dispatcher may hold up behind the
// next incoming message): hand the work to a goroutine or a queue of your own. A panic in a
// handler is recovered, logged and counted, and the message counts as handled.
type Handler func(topic string, payload []byte)

// AckHandler is a Handler that says itself when the message is taken care of: the broker gets
// the message's PUBACK only once ack has been called (by every handler the message went to). A
// handler that stores the message durably later (a batch commit) calls ack after the commit, so
// that a crash in between leaves the message with the mapper or the broker, to be delivered
// again, rather than lost. A handler that never calls ack holds the message until the session
// ends; it is delivered again on the next one.
type AckHandler func(topic string, payload []byte, ack func())

// Stats are the bus's counters since New.
type Stats struct {
	// MessagesIn counts messages delivered to handlers.
	MessagesIn uint64
	// MessagesOut counts publishes the broker acknowledged.
	MessagesOut uint64
	// PublishErrors counts publishes that failed or were not acknowledged in time.
	PublishErrors uint64
	// Unrouted counts messages that matched no handler (a session resumed with messages for a
	// filter nobody subscribed to in this process); they are acknowledged and dropped.
	Unrouted uint64
	// Reconnects counts connections made after the first one.
	Reconnects uint64
	// HandlerPanics counts panics recovered from handlers.
	HandlerPanics uint64
}

// Bus is edgecore's MQTT client and, in internal mode, its broker.
type Bus struct {
	cfg    Config
	log    logr.Logger
	client paho.Client

	// mu guards subs, client, broker, started and closed.
	mu      sync.Mutex
	subs    map[string]AckHandler
	broker  *broker
	started bool
	closed  bool

	// ready is true while the connection is up and every remembered subscription has been
	// acknowledged on it; readyCh wakes Start the first time.
	ready    atomic.Bool
	readyCh  chan struct{}
	connects atomic.Uint64

	messagesIn, messagesOut, publishErrors, unrouted, handlerPanics atomic.Uint64
}

// New checks the config and prepares the bus; nothing connects until Start.
func New(cfg Config) (*Bus, error) {
	switch cfg.Mode {
	case config.BrokerInternal, config.BrokerExternal:
	default:
		return nil, fmt.Errorf("broker mode %q is neither %q nor %q", cfg.Mode, config.BrokerInternal, config.BrokerExternal)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("broker address %q is not host:port: %w", cfg.Address, err)
	}
	if cfg.ClientID == "" {
		// An empty id with a persistent session is refused by brokers, and a random one would
		// leave the old session and its queued messages behind on every restart.
		return nil, errors.New("mqtt client id is empty: it must be stable for the node")
	}
	if cfg.Mode == config.BrokerInternal && !cfg.AllowNonLoopback {
		if err := checkLoopback(cfg.Address); err != nil {
			return nil, err
		}
	}
	return &Bus{
		cfg:     cfg,
		log:     cfg.Logger.WithValues("broker", cfg.Address, "mode", cfg.Mode),
		subs:    map[string]AckHandler{},
		readyCh: make(chan struct{}, 1),
	}, nil
}

// Start connects the bus; in internal mode it starts the embedded broker first. It returns
// once the client is connected and its subscriptions are in place, or when ctx ends. A broker
// that cannot be reached is retried until ctx ends; a broker that refuses the client
// (ErrRefused) is not. After Start returns nil, the client reconnects on its own whenever the
// connection drops, for as long as the bus is open. Start may be called once.
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return errors.New("the bus was already started or closed")
	}
	b.started = true
	dial := b.cfg.Address
	if b.cfg.Mode == config.BrokerInternal {
		br, err := startBroker(b.cfg.Address, b.cfg.AllowNonLoopback, b.cfg.Logger.WithName("broker"))
		if err != nil {
			b.mu.Unlock()
			return err
		}
		b.broker = br
		dial = br.addr()
		b.log.Info("Internal MQTT broker listening", "address", dial)
	}
	b.client = paho.NewClient(b.clientOptions(dial))
	b.mu.Unlock()

	if err := b.connect(ctx, dial); err != nil {
		_ = b.Close()
		return err
	}
	select {
	case <-b.readyCh:
		return nil
	case <-ctx.Done():
		_ = b.Close()
		return fmt.Errorf("restoring subscriptions on %s: %w", dial, context.Cause(ctx))
	}
}

// clientOptions is the client's configuration. The session is persistent: with a stable client
// id the broker keeps the subscriptions, and the QoS 1 messages for them, while edgecore is
// disconnected, and paho keeps unacknowledged outgoing QoS 1 messages to resend on reconnect.
func (b *Bus) clientOptions(dial string) *paho.ClientOptions {
	scheme := "tcp"
	if b.cfg.TLS != nil && b.cfg.Mode == config.BrokerExternal {
		scheme = "tls"
	}
	opts := paho.NewClientOptions().
		AddBroker(scheme + "://" + dial).
		SetClientID(b.cfg.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxRetryInterval).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetWriteTimeout(ackTimeout).
		SetOrderMatters(true).
		// PUBACK when the handlers say so (AckHandler), not when dispatch returns.
		SetAutoAckDisabled(true).
		// Every message goes through dispatch, not paho's per-subscription routes: the
		// handlers must be in place before the first CONNECT, when the client does not exist
		// yet, because a resumed session delivers queued messages at once.
		SetDefaultPublishHandler(b.dispatch).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			b.ready.Store(false)
			b.log.Info("Lost the MQTT connection; reconnecting", "err", err.Error())
		})
	if b.cfg.Mode == config.BrokerExternal {
		opts.SetUsername(b.cfg.Username).SetPassword(b.cfg.Password)
		if b.cfg.TLS != nil {
			opts.SetTLSConfig(b.cfg.TLS)
		}
	}
	return opts
}

// connect makes the first connection, retrying a broker that cannot be reached. paho's own
// retry (ConnectRetry) is not used because it also retries a refusal, which would hide bad
// credentials behind an endless wait.
func (b *Bus) connect(ctx context.Context, dial string) error {
	wait := 250 * time.Millisecond
	for {
		tok := b.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			// Disconnect waits for the attempt in flight in the background; Close does the rest.
			return fmt.Errorf("connecting to mqtt broker %s: %w", dial, context.Cause(ctx))
		}
		err := tok.Error()
		if err == nil {
			return nil
		}
		if refused(tok.(*paho.ConnectToken).ReturnCode()) {
			return fmt.Errorf("connecting to mqtt broker %s as %q: %w: %w", dial, b.cfg.ClientID, ErrRefused, err)
		}
		b.log.Info("Cannot reach the MQTT broker yet; retrying", "err", err.Error(), "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("connecting to mqtt broker %s: %w (last attempt: %w)", dial, context.Cause(ctx), err)
		}
		wait = min(2*wait, maxRetryInterval)
	}
}

// refused says whether a CONNACK return code is a refusal that retrying cannot fix.
func refused(rc byte) bool {
	switch rc {
	case packets.ErrRefusedBadProtocolVersion, packets.ErrRefusedIDRejected,
		packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
		return true
	}
	return false
}

// onConnect runs (on its own goroutine) after every successful connection. A broker that kept
// the session still has the subscriptions, but one that lost it (restarted without
// persistence, or the internal broker after an edgecore restart) does not, so they are all
// made again; subscribing twice to a filter is harmless.
func (b *Bus) onConnect(c paho.Client) {
	if b.connects.Add(1) > 1 {
		b.log.Info("Reconnected to the MQTT broker")
	}
	b.mu.Lock()
	filters := make(map[string]byte, len(b.subs))
	for f := range b.subs {
		filters[f] = qos
	}
	b.mu.Unlock()
	if len(filters) > 0 {
		tok := c.SubscribeMultiple(filters, nil)
		if !tok.WaitTimeout(ackTimeout) || tok.Error() != nil {
			// The connection is most likely gone again; the next onConnect tries again.
			b.log.Error(tok.Error(), "Cannot restore the MQTT subscriptions", "filters", len(filters))
			return
		}
	}
	b.ready.Store(true)
	select {
	case b.readyCh <- struct{}{}:
	default:
	}
}

// Publish sends payload to topic with QoS 1, not retained, and waits for the broker's PUBACK.
// It fails at once with ErrNotConnected while there is no connection. An error after the
// message was handed to paho (no PUBACK in time) means "not confirmed": paho may still deliver
// it after a reconnect, so a retry can produce a duplicate, never a loss.
func (b *Bus) Publish(topic string, payload []byte) error {
	b.mu.Lock()
	client := b.client
	b.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		b.publishErrors.Add(1)
		return fmt.Errorf("publishing to %s: %w", topic, ErrNotConnected)
	}
	tok := client.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(ackTimeout) {
		b.publishErrors.Add(1)
		return fmt.Errorf("publishing to %s: no PUBACK within %s", topic, ackTimeout)
	}
	if err := tok.Error(); err != nil {
		b.publishErrors.Add(1)
		if errors.Is(err, paho.ErrNotConnected) {
			return fmt.Errorf("publishing to %s: %w", topic, ErrNotConnected)
		}
		return fmt.Errorf("publishing to %s: %w", topic, err)
	}
	b.messagesOut.Add(1)
	return nil
}

// Subscribe delivers the messages matching filter to handler, with QoS 1. The subscription is
// remembered and made again after every reconnect. Subscribing before Start is allowed and is
// the way to lose nothing across an edgecore restart: the broker delivers the messages it
// queued for the session the moment the client connects. A filter for KubeEdge's topics must
// start with a literal "$hw/": by the MQTT spec a leading wildcard does not match topics that
// start with "$". Subscribing again to a filter replaces its handler.
func (b *Bus) Subscribe(filter string, handler Handler) error {
	if handler == nil {
		return errors.New("subscribing needs a filter and a handler")
	}
	return b.SubscribeAcked(filter, func(topic string, payload []byte, ack func()) {
		handler(topic, payload)
		ack()
	})
}

// SubscribeAcked is Subscribe for a handler that acknowledges the message itself (AckHandler).
func (b *Bus) SubscribeAcked(filter string, handler AckHandler) error {
	if filter == "" || handler == nil {
		return errors.New("subscribing needs a filter and a handler")
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("subscribing to %s: the bus is closed", filter)
	}
	b.subs[filter] = handler
	client := b.client
	b.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		// Remembered: onConnect subscribes when the connection is up (Start waits for that).
		return nil
	}
	tok := client.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(ackTimeout) {
		return fmt.Errorf("subscribing to %s: no SUBACK within %s", filter, ackTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribing to %s: %w", filter, err)
	}
	return nil
}

// dispatch hands a message to the handler of every filter it matches. Overlapping filters
// each get it, as they would from paho's own router.
func (b *Bus) dispatch(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	var handlers []AckHandler
	b.mu.Lock()
	for filter, h := range b.subs {
		if matches(filter, topic) {
			handlers = append(handlers, h)
		}
	}
	b.mu.Unlock()
	if len(handlers) == 0 {
		b.unrouted.Add(1)
		b.log.V(1).Info("Dropped a message no handler wants", "topic", topic)
		m.Ack()
		return
	}
	b.messagesIn.Add(1)
	// The PUBACK goes once every handler acknowledged; each handler's ack counts once.
	var left atomic.Int32
	left.Store(int32(len(handlers)))
	for _, h := range handlers {
		var once sync.Once
		b.call(h, topic, m.Payload(), func() {
			once.Do(func() {
				if left.Add(-1) == 0 {
					m.Ack()
				}
			})
		})
	}
}

// call runs one handler and survives its panic: a bad payload from a mapper must not take
// edgecore, and with it the whole node's cloud link, down.
func (b *Bus) call(h AckHandler, topic string, payload []byte, ack func()) {
	defer func() {
		if r := recover(); r != nil {
			b.handlerPanics.Add(1)
			b.log.Error(fmt.Errorf("panic: %v", r), "MQTT handler panicked; message dropped", "topic", topic)
			ack() // a message that made a handler panic would do it again
		}
	}()
	h(topic, payload, ack)
}

// Connected reports whether the client is connected and its subscriptions are in place.
func (b *Bus) Connected() bool {
	b.mu.Lock()
	client := b.client
	b.mu.Unlock()
	return client != nil && b.ready.Load() && client.IsConnectionOpen()
}

// Addr is the broker address the client dials: Config.Address, or in internal mode the
// address the broker actually listens on (which differs when Config.Address has port 0).
func (b *Bus) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broker != nil {
		return b.broker.addr()
	}
	return b.cfg.Address
}

// Stats returns a snapshot of the counters.
func (b *Bus) Stats() Stats {
	c := b.connects.Load()
	return Stats{
		MessagesIn:    b.messagesIn.Load(),
		MessagesOut:   b.messagesOut.Load(),
		PublishErrors: b.publishErrors.Load(),
		Unrouted:      b.unrouted.Load(),
		Reconnects:    max(c, 1) - 1,
		HandlerPanics: b.handlerPanics.Load(),
	}
}

// Close disconnects the client and stops the embedded broker, freeing its port. It is safe to
// call more than once and on a bus that never started.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	client, br := b.client, b.broker
	b.broker = nil
	b.mu.Unlock()
	b.ready.Store(false)
	if client != nil {
		// 250 ms for the DISCONNECT to go out; with a persistent session the broker keeps
		// queueing for this client id after it leaves.
		client.Disconnect(250)
	}
	if br != nil {
		if err := br.close(); err != nil {
			return fmt.Errorf("stopping the internal mqtt broker: %w", err)
		}
	}
	return nil
}
