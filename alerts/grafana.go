package alerts

import (
	"fmt"
	"strings"
)

// GrafanaOptions say where Grafana-managed copies of the rules live.
type GrafanaOptions struct {
	// PrometheusUID is the UID of the Grafana data source that scrapes
	// weft. Required.
	PrometheusUID string
	// Folder is the title of the folder the rules are filed in (created
	// when missing). Default "weft", the dashboards' folder.
	Folder string
	// Interval is how often Grafana evaluates them. Default 1m.
	Interval string
}

// Grafana's provisioning file for alert rules (apiVersion 1).
type grafanaFile struct {
	APIVersion int            `yaml:"apiVersion"`
	Groups     []grafanaGroup `yaml:"groups"`
}

type grafanaGroup struct {
	OrgID    int           `yaml:"orgId"`
	Name     string        `yaml:"name"`
	Folder   string        `yaml:"folder"`
	Interval string        `yaml:"interval"`
	Rules    []grafanaRule `yaml:"rules"`
}

type grafanaRule struct {
	UID          string            `yaml:"uid"`
	Title        string            `yaml:"title"`
	Condition    string            `yaml:"condition"`
	Data         []grafanaQuery    `yaml:"data"`
	NoDataState  string            `yaml:"noDataState"`
	ExecErrState string            `yaml:"execErrState"`
	For          string            `yaml:"for"`
	Labels       map[string]string `yaml:"labels"`
	Annotations  map[string]string `yaml:"annotations"`
}

type grafanaQuery struct {
	RefID             string         `yaml:"refId"`
	DatasourceUID     string         `yaml:"datasourceUid"`
	RelativeTimeRange map[string]int `yaml:"relativeTimeRange,omitempty"`
	Model             map[string]any `yaml:"model"`
}

// GrafanaRules renders groups as a Grafana alerting provisioning file
// (provisioning/alerting/): the same PromQL, queried as A from the
// Prometheus data source; the condition B is true for every series A
// returns (the expression already compares), so each series is an alert
// with A's labels. Grafana's templates read $labels as Prometheus's do;
// $value becomes $values.A.Value, the query's value.
func GrafanaRules(groups []Group, o GrafanaOptions) ([]byte, error) {
	if o.PrometheusUID == "" {
		return nil, fmt.Errorf("grafana alert rules: the Prometheus data source UID is required")
	}
	if o.Interval == "" {
		o.Interval = "1m"
	}
	if o.Folder == "" {
		o.Folder = "weft"
	}
	seen := map[string]int{}
	f := grafanaFile{APIVersion: 1}
	for _, g := range groups {
		gg := grafanaGroup{OrgID: 1, Name: g.Name, Folder: o.Folder, Interval: o.Interval}
		for _, r := range g.Rules {
			hold := r.For
			if hold == "" {
				hold = "0s"
			}
			gg.Rules = append(gg.Rules, grafanaRule{
				UID: grafanaUID(r, seen), Title: r.Alert, Condition: "B",
				Data: []grafanaQuery{
					{RefID: "A", DatasourceUID: o.PrometheusUID, RelativeTimeRange: map[string]int{"from": 900, "to": 0},
						Model: map[string]any{"refId": "A", "expr": r.Expr, "instant": true, "range": false}},
					{RefID: "B", DatasourceUID: "__expr__",
						Model: map[string]any{"refId": "B", "type": "math", "expression": "is_number($A)"}},
				},
				NoDataState: "OK", ExecErrState: "Error", For: hold,
				Labels: r.Labels, Annotations: grafanaAnnotations(r.Annotations),
			})
		}
		f.Groups = append(f.Groups, gg)
	}
	return marshal(f)
}

// grafanaUID is a rule's fixed UID (at most 40 characters): its name,
// severity and place among the rules of that name and severity (one per
// workflow), so a rule whose threshold changes replaces its old self.
func grafanaUID(r Rule, seen map[string]int) string {
	name := strings.ToLower(strings.TrimPrefix(r.Alert, "Weft"))
	name = name[:min(24, len(name))]
	key := name + "-" + r.Labels["severity"][:min(4, len(r.Labels["severity"]))]
	seen[key]++
	return fmt.Sprintf("weft-%s-%d", key, seen[key])
}

// grafanaAnnotations are a rule's annotations with Prometheus's $value
// written as Grafana's $values.A.Value.
func grafanaAnnotations(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		out[k] = strings.ReplaceAll(v, "$value", "$values.A.Value")
	}
	return out
}
