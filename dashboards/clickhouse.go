package dashboards

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// The SDK has no query type for the grafana-clickhouse-datasource plugin;
// this file defines one the way the SDK's custom-query example does, with
// the plugin's query model (src/types/sql.ts, CHSqlQuery).

// ClickHousePluginID is the plugin id of Grafana's ClickHouse data source.
const ClickHousePluginID = "grafana-clickhouse-datasource"

// QueryType is the plugin's queryType: how the query editor and Explore
// present the result.
type QueryType string

// Query types of the plugin.
const (
	QueryTypeTable      QueryType = "table"
	QueryTypeTimeSeries QueryType = "timeseries"
	QueryTypeLogs       QueryType = "logs"
	QueryTypeTraces     QueryType = "traces"
)

// Format is the plugin's result format, read by the backend (sqlds,
// sqlutil.FormatQueryOption).
type Format int

// Formats: a time series is converted from long to wide frames (one series
// per string column value); a table is returned as is.
const (
	FormatTimeSeries Format = 0
	FormatTable      Format = 1
	FormatLogs       Format = 2
	FormatTraces     Format = 3
)

// EditorTypeSQL marks a raw SQL query (as opposed to the query builder).
const EditorTypeSQL = "sql"

// ClickHouseQuery is one target of a panel on the ClickHouse data source.
type ClickHouseQuery struct {
	RefId      string                `json:"refId"`
	Hide       *bool                 `json:"hide,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	// EditorType is always "sql": weft's queries are hand-written.
	EditorType string `json:"editorType"`
	// QueryType is table, timeseries, logs or traces.
	QueryType QueryType `json:"queryType"`
	// RawSql is the SQL with Grafana variables and the plugin's macros.
	RawSql string `json:"rawSql"`
	// Format is how the backend shapes the frames (FormatTimeSeries, FormatTable …).
	Format Format `json:"format"`
}

// ImplementsDataqueryVariant marks ClickHouseQuery as a data query for cog.
func (ClickHouseQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (ClickHouseQuery) DataqueryType() string { return ClickHousePluginID }

// Validate accepts every query; the SQL is checked by running it in tests.
func (ClickHouseQuery) Validate() error { return nil }

// Equals compares two queries field by field.
func (q ClickHouseQuery) Equals(other variants.Dataquery) bool {
	var o ClickHouseQuery
	switch v := other.(type) {
	case ClickHouseQuery:
		o = v
	case *ClickHouseQuery:
		if v == nil {
			return false
		}
		o = *v
	default:
		return false
	}
	a, _ := json.Marshal(q)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

// clickHouseVariant tells cog how to unmarshal the plugin's queries.
func clickHouseVariant() variants.DataqueryConfig {
	return variants.DataqueryConfig{
		Identifier: ClickHousePluginID,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := &ClickHouseQuery{}
			return q, json.Unmarshal(raw, q)
		},
		StrictDataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := &ClickHouseQuery{}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			return q, dec.Decode(q)
		},
	}
}

var registerOnce sync.Once

// RegisterPlugins registers the SDK's default panels and queries and the
// ClickHouse query type with cog's runtime, so dashboards read back with the
// SDK (dashboard.Dashboard's UnmarshalJSON) keep their ClickHouse targets
// typed. It is safe to call more than once.
func RegisterPlugins() {
	registerOnce.Do(func() {
		plugins.RegisterDefaultPlugins()
		cog.NewRuntime().RegisterDataqueryVariant(clickHouseVariant())
	})
}

// Compile-time check that the builder builds a data query.
var _ cog.Builder[variants.Dataquery] = (*ClickHouseQueryBuilder)(nil)

// ClickHouseQueryBuilder builds a ClickHouseQuery.
type ClickHouseQueryBuilder struct {
	internal *ClickHouseQuery
}

// NewClickHouseQuery starts a raw SQL query on the dashboard's ClickHouse
// data source variable, as a table (FormatTable) unless told otherwise.
func NewClickHouseQuery(sql string) *ClickHouseQueryBuilder {
	return &ClickHouseQueryBuilder{internal: &ClickHouseQuery{
		RefId:      "A",
		Datasource: clickHouseRef(),
		EditorType: EditorTypeSQL,
		QueryType:  QueryTypeTable,
		RawSql:     sql,
		Format:     FormatTable,
	}}
}

// Build returns the query.
func (b *ClickHouseQueryBuilder) Build() (variants.Dataquery, error) {
	return *b.internal, b.internal.Validate()
}

// RefId names the query in the panel (node graph panels need "nodes" and "edges").
func (b *ClickHouseQueryBuilder) RefId(refID string) *ClickHouseQueryBuilder {
	b.internal.RefId = refID
	return b
}

// TimeSeries makes the backend return one series per label column value.
func (b *ClickHouseQueryBuilder) TimeSeries() *ClickHouseQueryBuilder {
	b.internal.QueryType, b.internal.Format = QueryTypeTimeSeries, FormatTimeSeries
	return b
}

// Traces marks a trace query.
func (b *ClickHouseQueryBuilder) Traces() *ClickHouseQueryBuilder {
	b.internal.QueryType, b.internal.Format = QueryTypeTraces, FormatTraces
	return b
}
