// Package telemetry is what a costlake process tells its operators: the
// Prometheus registry a worker or gateway serves on /metrics (costlake's
// own series and the Temporal SDK's temporal_* series, through one
// registry), the handler of that listener, and the slog setup of the
// production commands.
//
// Labels are bounded: formats, stages, tables, export kinds and route
// patterns, never payer or customer IDs (a reseller has hundreds); those
// are the Temporal search attributes' job.
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Stages of an ingestion that costlake_ingestion_duration_seconds times.
const (
	StageLocate    = "locate"    // reading the manifests, listing the chunks
	StageConvert   = "convert"   // one chunk: read, converted, written as Parquet
	StageReconcile = "reconcile" // the committed snapshot read back and compared
)

// Kinds of export costlake_exports_written_total counts.
const (
	ExportCustomer = "customer" // a closed cycle's detailed bill in a customer's bucket
	ExportReseller = "reseller" // the reseller's export of a period
)

// durationBuckets suit work from a millisecond (an HTTP call) to an hour
// (a multi-gigabyte chunk).
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Metrics is one process's registry. The zero of *Metrics (nil) records
// nothing, so code that counts needs no check.
type Metrics struct {
	reg *prometheus.Registry
	sdk client.MetricsHandler

	rows, bytes *prometheus.CounterVec
	ingestion   *prometheus.HistogramVec
	commit      *prometheus.HistogramVec
	reconcile   *prometheus.CounterVec
	exports     *prometheus.CounterVec
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
}

// New returns a registry with costlake's metrics, the Go runtime's and the
// process's, and an SDK metrics handler that reports into it.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costlake_rows_ingested_total", Help: "Rows converted into the billing tables, by delivery format.",
		}, []string{"format"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costlake_bytes_ingested_total", Help: "Bytes of source data files converted (as stored: compressed), by delivery format.",
		}, []string{"format"}),
		ingestion: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "costlake_ingestion_duration_seconds", Help: "Time an ingestion step took: locate (manifests), convert (one chunk), reconcile.",
			Buckets: durationBuckets,
		}, []string{"stage"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "costlake_commit_duration_seconds", Help: "Time a period's atomic commit (one Iceberg snapshot) took, by table.",
			Buckets: durationBuckets,
		}, []string{"table"}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costlake_reconciliation_failures_total", Help: "Reconciliations whose table totals differ from the source, by what was reconciled (ingestion, reseller_export).",
		}, []string{"check"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costlake_exports_written_total", Help: "Exports written, by kind (customer, reseller).",
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costlake_http_requests_total", Help: "Gateway requests, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "costlake_http_request_duration_seconds", Help: "Gateway request latency, by route pattern and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.rows, m.bytes, m.ingestion, m.commit, m.reconcile, m.exports, m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sdk, err := sdkHandler(reg)
	if err != nil {
		return nil, err
	}
	m.sdk = sdk
	return m, nil
}

// sdkHandler reports the Temporal SDK's metrics (temporal_request_total,
// temporal_workflow_task_execution_latency_seconds, …) into reg through
// OpenTelemetry's Prometheus exporter.
func sdkHandler(reg prometheus.Registerer) (client.MetricsHandler, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBuckets}},
	)))
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		// An instrument the meter refuses is a bug of the SDK's names, not
		// a reason to stop a worker: that series is missing, nothing else.
		OnError: func(error) {},
	}), nil
}

// Registry is the registry, to register more collectors or to gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SDKHandler goes into client.Options.MetricsHandler; nil when m is.
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return m.sdk
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Converted counts a converted chunk: its rows, its source bytes and how
// long it took.
func (m *Metrics) Converted(format string, rows, bytes int64, took time.Duration) {
	if m == nil {
		return
	}
	m.rows.WithLabelValues(format).Add(float64(rows))
	m.bytes.WithLabelValues(format).Add(float64(bytes))
	m.ingestion.WithLabelValues(StageConvert).Observe(took.Seconds())
}

// Step times an ingestion step other than a chunk's conversion.
func (m *Metrics) Step(stage string, took time.Duration) {
	if m == nil {
		return
	}
	m.ingestion.WithLabelValues(stage).Observe(took.Seconds())
}

// Committed times a period's commit into table.
func (m *Metrics) Committed(table string, took time.Duration) {
	if m == nil {
		return
	}
	m.commit.WithLabelValues(table).Observe(took.Seconds())
}

// Checks costlake_reconciliation_failures_total counts.
const (
	CheckIngestion      = "ingestion"       // a committed period against its source
	CheckResellerExport = "reseller_export" // a reseller export against the payers' totals
)

// ReconciliationFailed counts a failed reconciliation.
func (m *Metrics) ReconciliationFailed(check string) {
	if m == nil {
		return
	}
	m.reconcile.WithLabelValues(check).Inc()
}

// ExportsWritten counts n exports of a kind.
func (m *Metrics) ExportsWritten(kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.exports.WithLabelValues(kind).Add(float64(n))
}

// Request counts a gateway request; route is the route's pattern
// ("/v1/payers/:id"), never the path, so the series stay few.
func (m *Metrics) Request(route, method string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(took.Seconds())
}
