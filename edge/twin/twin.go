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

package twin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/edgetwin/edgetwin/edge/meta"
	"github.com/edgetwin/edgetwin/pkg/property"
	"github.com/edgetwin/edgetwin/pkg/wire"
)

// Bus is what DeviceTwin needs of the MQTT client: publish with QoS 1, and subscribe a handler to
// a topic filter (MQTT wildcards + and #). Handlers may be called from any goroutine, and more
// than one at a time.
type Bus interface {
	Publish(topic string, payload []byte) error
	Subscribe(filter string, handler func(topic string, payload []byte)) error
}

// AckBus is a Bus whose messages can be acknowledged after the handler returned (edge/bus with
// manual acks). DeviceTwin acknowledges a mapper's reports only once they are committed; on a
// plain Bus they are acknowledged when the handler returns, before the commit.
type AckBus interface {
	SubscribeAcked(filter string, handler func(topic string, payload []byte, ack func())) error
}

// Config is what New needs.
type Config struct {
	// NodeName is this node's name: the membership topics are the node's.
	NodeName string
	// Store is the edge's local store; it holds the devices (objects of wire.KindDevice), the
	// twins and the outbox.
	Store *meta.Store
	// Bus reaches the mappers.
	Bus Bus
	// Notify is called after reports were added to the outbox (EdgeHub's Notify). Optional.
	Notify func()
	// Clock gives the edge timestamps. Defaults to the real clock.
	Clock clock.PassiveClock
	// Logger receives DeviceTwin's logs.
	Logger logr.Logger
}

// ErrAlreadyStarted is returned by a second Start.
var ErrAlreadyStarted = errors.New("device twin already started")

// The reasons reports are refused for, as counted in Stats.ReportsRefused.
const (
	RefusedBadRequest      = "BadRequest"
	RefusedUnknownDevice   = "UnknownDevice"
	RefusedDesiredFromSpec = "DesiredFromSpec"
	RefusedStoreFailed     = "StoreFailed"
)

// refusalReasons are every reason counted: the three property reasons of pkg/property's checks
// and the request-level ones above.
var refusalReasons = []string{
	RefusedBadRequest, RefusedUnknownDevice, RefusedDesiredFromSpec, RefusedStoreFailed,
	property.ReasonUnknownProperty, property.ReasonInvalidValue, property.ReasonValueOutOfRange,
}

// Stats is a snapshot of DeviceTwin's counters.
type Stats struct {
	// Devices is the number of devices on this node.
	Devices int
	// ReportsAccepted counts property values accepted and queued for the cloud.
	ReportsAccepted uint64
	// ReportsRefused counts refused twin and state updates by reason: a request-level refusal
	// counts once, a property refused for its value counts once per property.
	ReportsRefused map[string]uint64
	// StatesAccepted counts device states accepted and queued for the cloud.
	StatesAccepted uint64
	// DeltasSent counts twin/update/delta messages published.
	DeltasSent uint64
	// PublishErrors counts messages the bus failed to publish.
	PublishErrors uint64
}

// DeviceTwin keeps the twins of this node's devices and speaks the device-twin protocol with
// their mappers. It implements EdgeHub's Listener. It is safe for concurrent use.
type DeviceTwin struct {
	cfg Config
	log logr.Logger

	// mu guards devices and the pending publications; it is held across a store transaction
	// so that a report and a desired change to one device cannot interleave.
	mu      sync.Mutex
	devices map[string]*device
	// deltas are the devices whose delta must be (re)published; the publisher computes it
	// from the current state when it sends, so a burst of changes sends one delta.
	deltas map[string]bool
	// members are the membership changes not yet announced.
	members map[string]*memberChange
	// beforeCommit, if set (by tests), runs at the end of every batch's transaction; an error
	// rolls the transaction back, as a crash before the commit would.
	beforeCommit func() error

	// queueMu guards the requests waiting for the worker (see batch.go) and serving, which is
	// true while the worker runs. It is taken after mu, never before.
	queueMu sync.Mutex
	queue   []*request
	serving bool
	work    chan struct{}

	wake    chan struct{}
	done    chan struct{}
	started atomic.Bool
	stopped atomic.Bool

	devicesGauge    atomic.Int64
	reportsAccepted atomic.Uint64
	statesAccepted  atomic.Uint64
	deltasSent      atomic.Uint64
	publishErrors   atomic.Uint64
	refused         map[string]*atomic.Uint64
}

// device is one device on this node.
type device struct {
	namespace, name string
	// version is the content version of the Device object held.
	version string
	body    wire.Device
	// props are the model's properties, by name.
	props map[string]*property.Schema
	// twins holds one row per property of the model, by name.
	twins map[string]meta.Twin
	// state is the state last reported, if any.
	state *meta.DeviceState
}

type memberChange struct {
	namespace, name string
	removed, added  bool
}

// New makes a DeviceTwin and restores every device and twin from the store, so that it serves
// mappers as before a restart even when the cloud is unreachable. It also repairs what a crash
// may have left: twins of a device stored without its listener having run are rebuilt from the
// objects table, and twins of a device deleted meanwhile are dropped. Deltas for every desired
// value not reported yet are published once Start runs.
func New(cfg Config) (*DeviceTwin, error) {
	switch {
	case cfg.NodeName == "" || !validLevel(cfg.NodeName) || strings.Contains(cfg.NodeName, "/"):
		return nil, fmt.Errorf("configuring the device twin: node name %q cannot be an MQTT topic level", cfg.NodeName)
	case cfg.Store == nil:
		return nil, errors.New("configuring the device twin: no store")
	case cfg.Bus == nil:
		return nil, errors.New("configuring the device twin: no bus")
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	t := &DeviceTwin{
		cfg:     cfg,
		log:     cfg.Logger.WithName("devicetwin"),
		devices: map[string]*device{},
		deltas:  map[string]bool{},
		members: map[string]*memberChange{},
		wake:    make(chan struct{}, 1),
		work:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		refused: map[string]*atomic.Uint64{},
	}
	for _, r := range refusalReasons {
		t.refused[r] = new(atomic.Uint64)
	}
	if err := t.restore(); err != nil {
		return nil, fmt.Errorf("restoring the device twins: %w", err)
	}
	return t, nil
}

// restore loads the devices from the objects table, their twins and states from DeviceTwin's
// tables, and brings the twins in line with the devices.
func (t *DeviceTwin) restore() error {
	objects, err := t.cfg.Store.ObjectsOfKind(wire.KindDevice)
	if err != nil {
		return err
	}
	rows, err := t.cfg.Store.Twins()
	if err != nil {
		return err
	}
	states, err := t.cfg.Store.DeviceStates()
	if err != nil {
		return err
	}
	twinsOf := map[string]map[string]meta.Twin{}
	for _, r := range rows {
		id := deviceID(r.Namespace, r.Name)
		if twinsOf[id] == nil {
			twinsOf[id] = map[string]meta.Twin{}
		}
		twinsOf[id][r.Property] = r
	}
	statesOf := map[string]meta.DeviceState{}
	for _, s := range states {
		statesOf[deviceID(s.Namespace, s.Name)] = s
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for _, obj := range objects {
		id := deviceID(obj.Ref.Namespace, obj.Ref.Name)
		var body wire.Device
		if err := json.Unmarshal(obj.Body, &body); err != nil {
			// The cloud sent it, so this is a bug on one side; serving the other devices
			// matters more than this one.
			// Its twins stay stored: a fixed body from the cloud finds them again.
			t.log.Error(err, "Skipping a stored device whose body cannot be read", "device", id)
			delete(twinsOf, id)
			delete(statesOf, id)
			continue
		}
		d := &device{namespace: obj.Ref.Namespace, name: obj.Ref.Name, twins: twinsOf[id]}
		if s, ok := statesOf[id]; ok {
			d.state = &s
		}
		if otherUID(d.twins, body.UID) {
			// Re-created while the listener could not run: the old device's values are not
			// this one's.
			if err := t.cfg.Store.Update(func(tx *meta.Tx) error { return tx.DeleteDevice(d.namespace, d.name) }); err != nil {
				return err
			}
			d.twins, d.state = nil, nil
		}
		if d.twins == nil {
			d.twins = map[string]meta.Twin{}
		}
		if err := t.applyLocked(d, obj.Ref.Version, body); err != nil {
			return err
		}
		t.devices[id] = d
		t.deltas[id] = true
		delete(twinsOf, id)
		delete(statesOf, id)
	}
	// What is left belongs to devices deleted while the listener could not run.
	orphans := map[string][2]string{}
	for _, tw := range twinsOf {
		for _, r := range tw {
			orphans[deviceID(r.Namespace, r.Name)] = [2]string{r.Namespace, r.Name}
		}
	}
	for id, s := range statesOf {
		orphans[id] = [2]string{s.Namespace, s.Name}
	}
	if len(orphans) > 0 {
		err := t.cfg.Store.Update(func(tx *meta.Tx) error {
			for _, o := range orphans {
				if err := tx.DeleteDevice(o[0], o[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	t.devicesGauge.Store(int64(len(t.devices)))
	t.signal()
	t.log.Info("Restored the device twins", "devices", len(t.devices), "orphansRemoved", len(orphans))
	return nil
}

// applyLocked brings device d to the content body of the given version: it stores the new twin
// rows and removes those of properties the model no longer has, in one transaction, then
// updates d.
func (t *DeviceTwin) applyLocked(d *device, version string, body wire.Device) error {
	now := t.now()
	put, del := desiredRows(d.namespace, d.name, version, body, d.twins, now)
	if len(put) > 0 || len(del) > 0 {
		err := t.cfg.Store.Update(func(tx *meta.Tx) error {
			for _, r := range put {
				if err := tx.PutTwin(r); err != nil {
					return err
				}
			}
			for _, p := range del {
				if err := tx.DeleteTwin(d.namespace, d.name, p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storing the twins of %s/%s: %w", d.namespace, d.name, err)
		}
	}
	for _, r := range put {
		d.twins[r.Property] = r
	}
	for _, p := range del {
		delete(d.twins, p)
	}
	d.version = version
	d.body = body
	d.props = modelProperties(body)
	return nil
}

// desiredRows computes the twin rows of a device after it changed to body (of content version
// version): every property of the model gets a row carrying its desired value and version; the
// reported value is kept unless the device was re-created (another UID). It returns the rows to
// store (only those that changed) and the properties whose rows go.
func desiredRows(namespace, name, version string, body wire.Device, old map[string]meta.Twin, now int64) (put []meta.Twin, del []string) {
	recreated := otherUID(old, body.UID)
	seen := map[string]bool{}
	for _, p := range body.Properties {
		seen[p.Name] = true
		r, ok := old[p.Name]
		if !ok || recreated {
			r = meta.Twin{Namespace: namespace, Name: name, Property: p.Name, UID: body.UID}
		}
		before := r
		if !sameValue(r.Desired, p.Desired) {
			r.Desired = cloneString(p.Desired)
			r.DesiredAt = now
		}
		r.DesiredVersion = version
		if !ok || recreated || !sameTwin(before, r) || before.DesiredVersion != r.DesiredVersion {
			put = append(put, r)
		}
	}
	for p := range old {
		if !seen[p] {
			del = append(del, p)
		}
	}
	slices.Sort(del)
	return put, del
}

// computeDelta returns, for every property with a desired value, that value if the reported one
// differs (numbers by value) or is missing; nil when the device is in sync.
func computeDelta(props map[string]*property.Schema, twins map[string]meta.Twin) map[string]string {
	var delta map[string]string
	for name, r := range twins {
		if r.Desired == nil {
			continue
		}
		if r.Reported != nil && property.Equal(props[name], *r.Desired, *r.Reported) {
			continue
		}
		if delta == nil {
			delta = map[string]string{}
		}
		delta[name] = *r.Desired
	}
	return delta
}

// twinReport is the report of a value accepted for a property: it names the desired value and
// the content version it was compared with, so the cloud can tell which desired value it acks.
func twinReport(mp *property.Schema, r meta.Twin, version string) wire.TwinReport {
	rep := wire.TwinReport{Property: r.Property, Timestamp: r.ReportedAt, Version: version, Desired: cloneString(r.Desired)}
	if r.Reported != nil {
		rep.Value = *r.Reported
		rep.Synced = r.Desired != nil && property.Equal(mp, *r.Desired, *r.Reported)
	}
	return rep
}

func (t *DeviceTwin) memberAddedLocked(namespace, name string) {
	id := deviceID(namespace, name)
	if c := t.members[id]; c != nil {
		c.added = true
		return
	}
	t.members[id] = &memberChange{namespace: namespace, name: name, added: true}
}

func (t *DeviceTwin) memberRemovedLocked(namespace, name string) {
	id := deviceID(namespace, name)
	c := t.members[id]
	switch {
	case c == nil:
		t.members[id] = &memberChange{namespace: namespace, name: name, removed: true}
	case c.added && !c.removed:
		// Never announced: nothing to take back.
		delete(t.members, id)
	default:
		c.added = false
	}
}

// Resend publishes the delta of every device again, for example after the bus reconnected to
// a broker that may have lost the earlier ones.
func (t *DeviceTwin) Resend() {
	t.mu.Lock()
	for id := range t.devices {
		t.deltas[id] = true
	}
	t.mu.Unlock()
	t.signal()
}

// Start subscribes to the mappers' topics and starts publishing deltas and membership changes
// (those from the restore first). It returns once subscribed; publishing stops when ctx ends,
// and Done is closed then.
func (t *DeviceTwin) Start(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return ErrAlreadyStarted
	}
	subs := []struct {
		filter  string
		handler func(string, []byte)
		acked   func(string, []byte, func())
	}{
		{DeviceTopic("+", "+", OpTwinUpdate), t.handleDevice, t.handleDeviceAcked},
		{DeviceTopic("+", "+", OpTwinGet), t.handleDevice, nil},
		{DeviceTopic("+", "+", OpStateUpdate), t.handleDevice, t.handleDeviceAcked},
		{NodeTopic(t.cfg.NodeName, OpMembershipGet), t.handleMembershipGet, nil},
	}
	// From now on the worker serves the writes, so that the handlers return at once.
	t.queueMu.Lock()
	t.serving = true
	t.queueMu.Unlock()
	acked, canAck := t.cfg.Bus.(AckBus)
	for _, s := range subs {
		var err error
		if canAck && s.acked != nil {
			err = acked.SubscribeAcked(s.filter, s.acked)
		} else {
			err = t.cfg.Bus.Subscribe(s.filter, s.handler)
		}
		if err != nil {
			t.stopServing()
			return fmt.Errorf("subscribing to %s: %w", s.filter, err)
		}
	}
	go t.run(ctx)
	return nil
}

// Done is closed when the publisher has stopped, after Start's context ended.
func (t *DeviceTwin) Done() <-chan struct{} { return t.done }

func (t *DeviceTwin) run(ctx context.Context) {
	defer close(t.done)
	for {
		select {
		case <-ctx.Done():
			t.stopped.Store(true)
			t.stopServing()
			return
		case <-t.work:
			t.serveQueued()
		case <-t.wake:
			t.flush()
		}
	}
}

func (t *DeviceTwin) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

type publication struct {
	topic   string
	payload any
	delta   bool
}

// flush publishes the pending membership changes, then the pending deltas, computed from the
// current state. Publishing happens outside the lock, so a slow bus never holds up EdgeHub's
// listener calls or the mappers' requests.
func (t *DeviceTwin) flush() {
	now := t.now()
	var pubs []publication
	t.mu.Lock()
	if len(t.members) > 0 {
		m := MembershipUpdated{BaseMessage: t.base("", now), Added: []MembershipDevice{}, Removed: []MembershipDevice{}}
		for _, id := range slices.Sorted(maps.Keys(t.members)) {
			c := t.members[id]
			if c.removed {
				m.Removed = append(m.Removed, MembershipDevice{ID: id, Name: c.name, Namespace: c.namespace})
			}
			if d := t.devices[id]; c.added && d != nil {
				m.Added = append(m.Added, d.membership())
			}
		}
		clear(t.members)
		if len(m.Added)+len(m.Removed) > 0 {
			pubs = append(pubs, publication{topic: NodeTopic(t.cfg.NodeName, OpMembershipUpdated), payload: m})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.deltas)) {
		d := t.devices[id]
		if d == nil {
			continue
		}
		if delta := computeDelta(d.props, d.twins); delta != nil {
			pubs = append(pubs, publication{
				topic: DeviceTopic(d.namespace, d.name, OpTwinUpdateDelta),
				payload: Delta{BaseMessage: t.base("", now), Version: d.version,
					Twin: d.msgTwins(), Delta: delta},
				delta: true,
			})
		}
	}
	clear(t.deltas)
	t.mu.Unlock()
	for _, p := range pubs {
		if t.publish(p.topic, p.payload) && p.delta {
			t.deltasSent.Add(1)
		}
	}
}

// publish encodes and publishes one message and reports whether the bus took it.
func (t *DeviceTwin) publish(topic string, payload any) bool {
	b, err := json.Marshal(payload)
	if err == nil {
		err = t.cfg.Bus.Publish(topic, b)
	}
	if err != nil {
		t.publishErrors.Add(1)
		t.log.Error(err, "Could not publish", "topic", topic)
		return false
	}
	return true
}

// handleDevice serves the requests mappers send on device topics.
func (t *DeviceTwin) handleDevice(topic string, payload []byte) {
	t.handleDeviceAcked(topic, payload, nil)
}

// handleDeviceAcked is handleDevice for a bus that lets the message be acknowledged after the
// commit that stores it (AckBus).
func (t *DeviceTwin) handleDeviceAcked(topic string, payload []byte, ack func()) {
	if t.stopped.Load() {
		return // not acknowledged: the broker delivers it again to the next edgecore
	}
	ns, name, op, ok := ParseDeviceTopic(topic)
	if !ok {
		t.log.V(1).Info("Ignoring a message on a topic that names no device", "topic", topic)
		if ack != nil {
			ack()
		}
		return
	}
	// Queued for the worker, which writes a burst in one transaction and answers (and
	// acknowledges) once it committed; this handler runs on the bus's dispatch goroutine and
	// must return quickly.
	t.submit(&request{op: op, ns: ns, name: name, payload: payload, now: t.now(), ack: ack}, false)
}

// handleMembershipGet answers with every device of the node and its twins, in order with the
// writes queued before it.
func (t *DeviceTwin) handleMembershipGet(_ string, payload []byte) {
	if t.stopped.Load() {
		return
	}
	t.submit(&request{op: OpMembershipGet, payload: payload, now: t.now()}, false)
}

// unknownDevice is the error for a request about a device this node does not hold.
func unknownDevice(ns, name string) error {
	return fmt.Errorf("%w: no device %s/%s on this node", ErrUnknownDevice, ns, name)
}

// Stats returns a snapshot of the counters.
func (t *DeviceTwin) Stats() Stats {
	s := Stats{
		Devices:         int(t.devicesGauge.Load()),
		ReportsAccepted: t.reportsAccepted.Load(),
		StatesAccepted:  t.statesAccepted.Load(),
		DeltasSent:      t.deltasSent.Load(),
		PublishErrors:   t.publishErrors.Load(),
		ReportsRefused:  make(map[string]uint64, len(t.refused)),
	}
	for r, c := range t.refused {
		s.ReportsRefused[r] = c.Load()
	}
	return s
}

func (t *DeviceTwin) countRefusal(reason string, n uint64) {
	c := t.refused[reason]
	if c == nil {
		c = t.refused[RefusedBadRequest]
	}
	c.Add(n)
}

// requestRefusal names the reason a whole request was refused for.
func requestRefusal(err error) string {
	switch Code(err) {
	case CodeConflict:
		return RefusedDesiredFromSpec
	case CodeNotFound:
		return RefusedUnknownDevice
	default:
		return RefusedBadRequest
	}
}

func (t *DeviceTwin) now() int64 { return t.cfg.Clock.Now().UnixMilli() }

// base fills the common fields; an edge-originated message gets a fresh event id.
func (t *DeviceTwin) base(eventID string, now int64) BaseMessage {
	if eventID == "" {
		eventID = newEventID()
	}
	return BaseMessage{EventID: eventID, Timestamp: now}
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (d *device) msgTwins() map[string]*MsgTwin {
	m := make(map[string]*MsgTwin, len(d.twins))
	for name, r := range d.twins {
		m[name] = msgTwin(d.props[name], r)
	}
	return m
}

func (d *device) membership() MembershipDevice {
	m := MembershipDevice{
		ID: deviceID(d.namespace, d.name), Name: d.name, Namespace: d.namespace,
		Model: d.body.Model, Protocol: d.body.Protocol, Twin: d.msgTwins(),
	}
	if d.state != nil {
		m.State = d.state.State
	}
	return m
}

// msgTwin is a twin row as the protocol shows it.
func msgTwin(mp *property.Schema, r meta.Twin) *MsgTwin {
	optional := false
	m := &MsgTwin{Optional: &optional}
	if mp != nil {
		m.Metadata = &TypeMetadata{Type: mp.Type}
	}
	if r.Desired != nil {
		m.Expected = &Value{Value: cloneString(r.Desired), Metadata: &ValueMetadata{Timestamp: r.DesiredAt}}
	}
	if r.Reported != nil {
		m.Actual = &Value{Value: cloneString(r.Reported), Metadata: &ValueMetadata{Timestamp: r.ReportedAt}}
	}
	return m
}

// modelProperties gives the schema pkg/property checks each of the device's properties against.
func modelProperties(body wire.Device) map[string]*property.Schema {
	props := make(map[string]*property.Schema, len(body.Properties))
	for _, p := range body.Properties {
		props[p.Name] = &property.Schema{Name: p.Name, Type: p.Type, Minimum: cloneString(p.Minimum), Maximum: cloneString(p.Maximum)}
	}
	return props
}

// otherUID reports whether any of the rows belongs to a device of another UID.
func otherUID(rows map[string]meta.Twin, uid string) bool {
	for _, r := range rows {
		if r.UID != uid {
			return true
		}
	}
	return false
}

func deviceID(namespace, name string) string { return namespace + "/" + name }

func sameValue(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameTwin(a, b meta.Twin) bool {
	return sameValue(a.Desired, b.Desired) && sameValue(a.Reported, b.Reported) && a.DesiredAt == b.DesiredAt &&
		a.ReportedAt == b.ReportedAt && a.UID == b.UID
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	return new(*s)
}
