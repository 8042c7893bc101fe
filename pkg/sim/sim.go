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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Defaults of Config.
const (
	// DefaultProtocol is the protocol of the devices the simulator drives unless told otherwise:
	// a Device (or its model) says protocol "simulator" to be simulated.
	DefaultProtocol = "simulator"
	// AllProtocols as Config.Protocol drives every device of the node, whatever its protocol.
	AllProtocols = "*"
	// DefaultReportInterval is how often every device reports its values.
	DefaultReportInterval = time.Second
	// DefaultBroker is edgecore's embedded broker.
	DefaultBroker = "tcp://127.0.0.1:1883"
)

// Config is what New needs.
type Config struct {
	// Broker is the MQTT broker's URL, tcp://host:port (a bare host:port means tcp).
	Broker string
	// Username and Password authenticate to the broker, if it wants them.
	Username, Password string
	// Node is the edge node whose devices are simulated: its membership topics are used.
	Node string
	// ClientID is the MQTT client id. It must be stable across restarts, for the broker to keep
	// the session and the deltas published while the simulator was away. Default
	// "edgetwin-sim-<node>".
	ClientID string
	// Protocol selects the devices to drive by the protocol their membership entry names;
	// AllProtocols drives all. Default DefaultProtocol.
	Protocol string
	// ReportInterval is the tick: every device advances and reports its values once per tick.
	// The protocol does not carry a property's reportPeriod, so there is one interval for all.
	// Default DefaultReportInterval.
	ReportInterval time.Duration
	// Log receives one line per membership change, delta, error result and unreadable message
	// (and more with Verbosity). Default: discarded.
	Log io.Writer
	// Verbosity adds lines: 1 for ignored messages and connection details, 2 for every
	// message published.
	Verbosity int
	// Rand is the source of the simulation's noise; tests give a seeded one. Default: a
	// random seed. Only the simulator uses it once New returned.
	Rand *rand.Rand
}

// Stats is a snapshot of the simulator's counters.
type Stats struct {
	// Connected is true while the simulator is connected and subscribed.
	Connected bool
	// Devices is the number of devices driven.
	Devices int
	// Deltas counts deltas received for driven devices.
	Deltas uint64
	// Reports counts twin/update messages the broker took.
	Reports uint64
	// ResultErrors counts error results for driven devices (and for membership/get).
	ResultErrors uint64
	// Garbage counts messages dropped because they could not be read.
	Garbage uint64
}

// DeviceSnapshot is one device as GET /devices shows it.
type DeviceSnapshot struct {
	// ID is namespace/name.
	ID string `json:"id"`
	// Kind is how the device is simulated: thermostat, counter, switch or generic.
	Kind     string `json:"kind"`
	Protocol string `json:"protocol"`
	Model    string `json:"model,omitempty"`
	// Online is true once the broker took the device's "online" state.
	Online bool `json:"online"`
	// Values are the device's current values, by property; Desired the last desired values
	// received.
	Values  map[string]string `json:"values"`
	Desired map[string]string `json:"desired"`
	// Deltas counts the deltas received; LastDelta is when the last one came.
	Deltas    uint64     `json:"deltas"`
	LastDelta *time.Time `json:"lastDelta,omitempty"`
}

// Simulator drives simulated devices over MQTT. Make it with New and run it with Run; Snapshot,
// Events and Stats may be called at any time, from any goroutine.
type Simulator struct {
	cfg Config
	log *lineLog

	// mu guards devices, events, rand and every device's fields.
	mu      sync.Mutex
	devices map[string]*device
	events  *ring
	rand    *rand.Rand

	// wake asks the run loop to publish what a message made pending (a report after a delta).
	wake    chan struct{}
	client  paho.Client
	started atomic.Bool

	eventIDs                               atomic.Uint64
	connected                              atomic.Bool
	deltas, reports, resultErrors, garbage atomic.Uint64
}

// New checks cfg, fills in the defaults and makes a Simulator. Nothing connects until Run.
func New(cfg Config) (*Simulator, error) {
	if cfg.Node == "" || !validLevel(cfg.Node) {
		return nil, fmt.Errorf("node name %q cannot be an MQTT topic level", cfg.Node)
	}
	if cfg.Broker == "" {
		cfg.Broker = DefaultBroker
	}
	broker, err := brokerURL(cfg.Broker)
	if err != nil {
		return nil, err
	}
	cfg.Broker = broker
	if cfg.ClientID == "" {
		cfg.ClientID = "edgetwin-sim-" + cfg.Node
	}
	if cfg.Protocol == "" {
		cfg.Protocol = DefaultProtocol
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.ReportInterval < 0 {
		return nil, fmt.Errorf("report interval %s is negative", cfg.ReportInterval)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Simulator{
		cfg:     cfg,
		log:     &lineLog{w: cfg.Log, verbosity: cfg.Verbosity},
		devices: map[string]*device{},
		events:  newRing(maxEvents),
		rand:    cfg.Rand,
		wake:    make(chan struct{}, 1),
	}, nil
}

// brokerURL checks the broker address and gives a bare host:port the tcp scheme.
func brokerURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "tcp://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("broker %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return "", fmt.Errorf("broker %q: scheme %q is not one of tcp, mqtt, ssl, tls, mqtts, ws, wss", s, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("broker %q has no host", s)
	}
	return s, nil
}

// drives says whether a device of this protocol is the simulator's.
func (s *Simulator) drives(protocol string) bool {
	return s.cfg.Protocol == AllProtocols || protocol == s.cfg.Protocol
}

// handle takes one message from the broker. It runs on paho's dispatch goroutine, one message at
// a time in the order they came, so it only changes state and leaves publishing to the run
// loop. Nothing a message holds can make it panic; if a bug did, the message is dropped as
// unreadable and the simulator goes on.
func (s *Simulator) handle(topic string, payload []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.dropGarbage(topic, "", fmt.Errorf("%w: handling it panicked: %v", errGarbage, r))
		}
	}()
	switch topic {
	case nodeTopic(s.cfg.Node, opMembershipGetResult):
		s.handleMembershipGet(topic, payload)
		return
	case nodeTopic(s.cfg.Node, opMembershipUpdated):
		s.handleMembershipUpdated(topic, payload)
		return
	}
	ns, name, op, ok := parseDeviceTopic(topic)
	if !ok {
		s.log.v(1, "ignored", "topic", topic, "why", "not a topic the simulator listens on")
		return
	}
	switch op {
	case opTwinUpdateDelta:
		s.handleDelta(topic, ns+"/"+name, payload)
	case opTwinUpdateResult, opStateUpdateResult:
		s.handleResult(topic, ns+"/"+name, strings.TrimSuffix(op, "/result"), payload)
	default:
		s.log.v(1, "ignored", "topic", topic, "why", "not a topic the simulator listens on")
	}
}

// handleMembershipGet takes the node's full device list: devices not known yet are added,
// known ones learn their desired values, and driven devices no longer listed are removed (they
// left while the simulator was not listening).
func (s *Simulator) handleMembershipGet(topic string, payload []byte) {
	var m membershipResult
	if err := decode(payload, &m); err != nil {
		s.dropGarbage(topic, "", err)
		return
	}
	if m.Code != 0 {
		s.resultError("", opMembershipGet, m.Code, m.Reason)
		return
	}
	if m.Devices == nil {
		// The edge always lists the devices, if none then as []: taking a message without the
		// list for "no devices" would drop every device over a stray payload.
		s.dropGarbage(topic, "", fmt.Errorf("%w: a membership/get result without the devices list", errGarbage))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := map[string]bool{}
	var added []string
	for i := range m.Devices {
		dm := &m.Devices[i]
		if err := checkMember(dm); err != nil {
			s.dropGarbageLocked(topic, "", err)
			continue
		}
		if !s.drives(dm.Protocol) {
			continue
		}
		listed[dm.ID] = true
		if d := s.devices[dm.ID]; d != nil {
			s.logDesiredLocked(d, d.learn(dm.Twin))
			continue
		}
		s.addLocked(*dm)
		added = append(added, dm.ID)
	}
	var removed []string
	for _, id := range slices.Sorted(maps.Keys(s.devices)) {
		if !listed[id] {
			s.removeLocked(id)
			removed = append(removed, id)
		}
	}
	s.logMembership(opMembershipGetResult, added, removed, len(s.devices))
	s.signal()
}

// handleMembershipUpdated applies a membership change: removals first, since a device
// re-created under the same name is in both lists.
func (s *Simulator) handleMembershipUpdated(topic string, payload []byte) {
	var m membershipUpdated
	if err := decode(payload, &m); err != nil {
		s.dropGarbage(topic, "", err)
		return
	}
	if m.Added == nil && m.Removed == nil {
		s.dropGarbage(topic, "", fmt.Errorf("%w: a membership update that lists neither added nor removed devices", errGarbage))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var added, removed []string
	for i := range m.Removed {
		dm := &m.Removed[i]
		if err := checkMember(dm); err != nil {
			s.dropGarbageLocked(topic, "", err)
			continue
		}
		if s.devices[dm.ID] != nil {
			s.removeLocked(dm.ID)
			removed = append(removed, dm.ID)
		}
	}
	for i := range m.Added {
		dm := &m.Added[i]
		if err := checkMember(dm); err != nil {
			s.dropGarbageLocked(topic, "", err)
			continue
		}
		if !s.drives(dm.Protocol) {
			s.log.v(1, "ignored", "device", dm.ID, "protocol", dm.Protocol, "why", "not this simulator's protocol")
			continue
		}
		if d := s.devices[dm.ID]; d != nil {
			// A duplicate (QoS 1 delivers at least once): learn what it says.
			s.logDesiredLocked(d, d.learn(dm.Twin))
			continue
		}
		s.addLocked(*dm)
		added = append(added, dm.ID)
	}
	s.logMembership(opMembershipUpdated, added, removed, len(s.devices))
	s.signal()
}

func (s *Simulator) addLocked(m membershipDevice) {
	d := newDevice(m)
	applied := d.learn(m.Twin)
	// The first report goes out at once, with the "online" state.
	d.dirty = true
	s.devices[m.ID] = d
	s.eventLocked(EventAdded, m.ID, kv("kind", d.kind.String(), "protocol", d.protocol, "model", d.model))
	s.logDesiredLocked(d, applied)
}

func (s *Simulator) removeLocked(id string) {
	delete(s.devices, id)
	s.eventLocked(EventRemoved, id, "")
}

// handleDelta applies every desired value of a delta to a driven device, which reports them
// back at once.
func (s *Simulator) handleDelta(topic, id string, payload []byte) {
	var m delta
	if err := decode(payload, &m); err != nil {
		s.dropGarbage(topic, id, err)
		return
	}
	if m.Delta == nil {
		s.dropGarbage(topic, id, fmt.Errorf("%w: a delta without the delta map", errGarbage))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[id]
	if d == nil {
		s.log.v(1, "ignored", "topic", topic, "why", "a delta for a device the simulator does not drive")
		return
	}
	d.learn(m.Twin)
	var pairs []string
	for _, p := range slices.Sorted(maps.Keys(m.Delta)) {
		if !propertyName.MatchString(p) {
			s.log.line("garbage", "device", id, "error", fmt.Sprintf("the delta names %q, which is not a property name", p))
			continue
		}
		d.desire(p, m.Delta[p])
		pairs = append(pairs, p, m.Delta[p])
	}
	d.deltas++
	d.lastDelta = time.Now()
	s.deltas.Add(1)
	s.log.line("delta", append([]string{"device", id}, pairs...)...)
	s.eventLocked(EventDelta, id, kv(pairs...))
	s.signal()
}

// handleResult logs an error result for a driven device; success results only at verbosity 2.
// Results for other devices are other mappers' business.
func (s *Simulator) handleResult(topic, id, op string, payload []byte) {
	var m result
	if err := decode(payload, &m); err != nil {
		s.dropGarbage(topic, id, err)
		return
	}
	s.mu.Lock()
	driven := s.devices[id] != nil
	s.mu.Unlock()
	switch {
	case m.Code == 0:
		s.log.v(2, "result", "device", id, "op", op, "event", m.EventID)
	case driven:
		s.resultError(id, op, m.Code, m.Reason)
	default:
		s.log.v(1, "ignored", "topic", topic, "why", "an error result for a device the simulator does not drive")
	}
}

func (s *Simulator) resultError(id, op string, code int, reason string) {
	s.resultErrors.Add(1)
	detail := kv("op", op, "code", strconv.Itoa(code), "reason", reason)
	s.log.line("result-error", "device", id, "op", op, "code", strconv.Itoa(code), "reason", reason)
	s.mu.Lock()
	s.eventLocked(EventResultError, id, detail)
	s.mu.Unlock()
}

func (s *Simulator) dropGarbage(topic, id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropGarbageLocked(topic, id, err)
}

func (s *Simulator) dropGarbageLocked(topic, id string, err error) {
	s.garbage.Add(1)
	s.log.line("garbage", "topic", topic, "error", err.Error())
	s.eventLocked(EventGarbage, id, kv("topic", topic, "error", err.Error()))
}

func (s *Simulator) eventLocked(typ, id, detail string) {
	s.events.add(Event{Time: time.Now(), Type: typ, Device: id, Detail: detail})
}

// logMembership writes the one line of a membership change, if it changed anything.
func (s *Simulator) logMembership(from string, added, removed []string, devices int) {
	if len(added)+len(removed) == 0 {
		s.log.v(1, "membership", "unchanged", from, "devices", strconv.Itoa(devices))
		return
	}
	var pairs []string
	if len(added) > 0 {
		pairs = append(pairs, "added", strings.Join(added, ","))
	}
	if len(removed) > 0 {
		pairs = append(pairs, "removed", strings.Join(removed, ","))
	}
	s.log.line("membership", append(pairs, "devices", strconv.Itoa(devices))...)
}

// logDesiredLocked writes the expected values a membership message made the device apply.
func (s *Simulator) logDesiredLocked(d *device, applied map[string]string) {
	if len(applied) == 0 {
		return
	}
	pairs := []string{"device", d.id}
	for _, p := range slices.Sorted(maps.Keys(applied)) {
		pairs = append(pairs, p, applied[p])
	}
	s.log.line("desired", append(pairs, "from", "membership")...)
}

func (s *Simulator) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// outgoing is one message to publish, and what its success means.
type outgoing struct {
	topic   string
	payload []byte
	device  string
	// online marks the device's "online" state; report, a twin/update.
	online, report bool
}

// collect advances every device by a tick if tick is set, and returns the messages due: the
// "online" state of devices not announced yet, and the values of devices that applied a desired
// value or ticked.
func (s *Simulator) collect(tick bool) []outgoing {
	now := time.Now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outgoing
	for _, id := range slices.Sorted(maps.Keys(s.devices)) {
		d := s.devices[id]
		if tick {
			d.kind.step(d, s.rand)
			d.dirty = true
		}
		if !d.online {
			b, _ := json.Marshal(stateUpdate{baseMessage: s.base(now), State: "online"})
			out = append(out, outgoing{topic: deviceTopic(d.namespace, d.name, opStateUpdate), payload: b, device: id, online: true})
		}
		if d.dirty {
			d.dirty = false
			if u := d.report(s.base(now)); u != nil {
				b, _ := json.Marshal(u)
				out = append(out, outgoing{topic: deviceTopic(d.namespace, d.name, opTwinUpdate), payload: b, device: id, report: true})
			}
		}
	}
	return out
}

// sent records which messages the broker took: an announced device is online, and a device
// whose values did not go out reports again at the next chance.
func (s *Simulator) sent(out []outgoing, ok []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range out {
		d := s.devices[o.device]
		if ok[i] && o.report {
			s.reports.Add(1)
		}
		if d == nil {
			continue
		}
		switch {
		case o.online && ok[i]:
			d.online = true
		case o.report && !ok[i]:
			d.dirty = true
		}
	}
}

func (s *Simulator) base(now int64) baseMessage {
	return baseMessage{EventID: s.cfg.ClientID + "-" + strconv.FormatUint(s.eventIDs.Add(1), 10), Timestamp: now}
}

// Snapshot returns every driven device, by id.
func (s *Simulator) Snapshot() []DeviceSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceSnapshot, 0, len(s.devices))
	for _, id := range slices.Sorted(maps.Keys(s.devices)) {
		d := s.devices[id]
		snap := DeviceSnapshot{
			ID: id, Kind: d.kind.String(), Protocol: d.protocol, Model: d.model, Online: d.online,
			Values: maps.Clone(d.values), Desired: maps.Clone(d.desired), Deltas: d.deltas,
		}
		if !d.lastDelta.IsZero() {
			snap.LastDelta = new(d.lastDelta)
		}
		out = append(out, snap)
	}
	return out
}

// Events returns the last events, oldest first.
func (s *Simulator) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events.all()
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	n := len(s.devices)
	s.mu.Unlock()
	return Stats{
		Connected: s.connected.Load(), Devices: n, Deltas: s.deltas.Load(), Reports: s.reports.Load(),
		ResultErrors: s.resultErrors.Load(), Garbage: s.garbage.Load(),
	}
}

// errAlreadyRunning is returned by a second Run.
var errAlreadyRunning = errors.New("the simulator is already running")

// kv writes key=value pairs, quoting values that need it.
func kv(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pairs[i])
		b.WriteByte('=')
		b.WriteString(quote(pairs[i+1]))
	}
	return b.String()
}

// quote leaves a value bare when a reader splitting on spaces and '=' gets it back whole.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\"=\\") && strconv.CanBackquote(v) {
		return v
	}
	return strconv.Quote(v)
}

// lineLog writes one line per call: the time, a word saying what happened, key=value pairs.
type lineLog struct {
	mu        sync.Mutex
	w         io.Writer
	verbosity int
}

func (l *lineLog) line(what string, pairs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := kv(pairs...)
	if rest != "" {
		rest = " " + rest
	}
	_, _ = fmt.Fprintf(l.w, "%s %s%s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), what, rest)
}

// v writes the line only at verbosity level or above.
func (l *lineLog) v(level int, what string, pairs ...string) {
	if l.verbosity >= level {
		l.line(what, pairs...)
	}
}
