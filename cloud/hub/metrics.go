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

package hub

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CloudHub's Prometheus series. They are registered once per Hub on the registerer
// given in Config (cloudcore passes controller-runtime's registry, served on /metrics).
type metrics struct {
	connected  prometheus.Gauge
	queueDepth *prometheus.GaugeVec
	coalesced  prometheus.Counter
	drops      *prometheus.CounterVec
	messages   *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	refusals   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgetwin_cloudhub_connected_nodes", Help: "Edge nodes holding a session with CloudHub.",
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgetwin_cloudhub_queue_depth", Help: "Messages waiting in a node's send queue.",
		}, []string{"node"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgetwin_cloudhub_coalesced_total", Help: "Object messages replaced by a newer version before they were sent.",
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetwin_cloudhub_session_drops_total", Help: "Sessions closed by CloudHub, by cause.",
		}, []string{"cause"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetwin_cloudhub_messages_total", Help: "Messages exchanged with edge nodes, by direction and type.",
		}, []string{"direction", "type"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetwin_cloudhub_bytes_total", Help: "Bytes of messages exchanged with edge nodes, by direction.",
		}, []string{"direction"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetwin_cloudhub_refusals_total", Help: "Connection attempts refused, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.queueDepth, m.coalesced, m.drops, m.messages, m.bytes, m.refusals)
	}
	return m
}

func (m *metrics) sent(t string, n int) {
	m.messages.WithLabelValues("out", t).Inc()
	m.bytes.WithLabelValues("out").Add(float64(n))
}

func (m *metrics) received(t string, n int) {
	m.messages.WithLabelValues("in", t).Inc()
	m.bytes.WithLabelValues("in").Add(float64(n))
}
