package intake

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the intake's Prometheus collectors.
type Metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
}

// NewMetrics registers the intake collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upbuild_webhook_deliveries_total",
			Help: "Webhook deliveries by instance, event kind and outcome.",
		}, []string{"instance", "event", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "upbuild_webhook_intake_seconds",
			Help:    "Time from a delivery's arrival to its answer, including the durable commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
