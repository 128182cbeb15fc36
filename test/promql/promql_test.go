package promql

import (
	"reflect"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		expr     string
		want     []Selector
		grouping []string
	}{
		"an aggregation over a rate, grouped before its argument": {
			expr:     `sum by (webhook, decision) (rate(requests_total{namespace="ns", decision="errored"}[5m])) > 0`,
			want:     []Selector{{Metric: "requests_total", Matchers: []Matcher{{"namespace", "=", "ns"}, {"decision", "=", "errored"}}}},
			grouping: []string{"webhook", "decision"},
		},
		"a histogram quantile, grouped after its argument, with a regular expression": {
			expr:     `histogram_quantile(0.99, sum(rate(latency_seconds_bucket{name=~".+[.]dev"}[5m])) without (pod)) > 1`,
			want:     []Selector{{Metric: "latency_seconds_bucket", Matchers: []Matcher{{"name", "=~", ".+[.]dev"}}}},
			grouping: []string{"pod"},
		},
		"absent, a comparison and a nested count": {
			expr:     `absent(build_info{namespace="a"} == 1) or count by (ns) (count by (ns, d) (info == 1)) > 1`,
			want:     []Selector{{Metric: "build_info", Matchers: []Matcher{{"namespace", "=", "a"}}}, {Metric: "info"}},
			grouping: []string{"ns", "ns", "d"},
		},
		"strings and escapes do not leak names, time() is a function": {
			expr:     `time() - max by (pod) (ts{a="x\"y", b='q'}) offset 5m`,
			want:     []Selector{{Metric: "ts", Matchers: []Matcher{{"a", "=", `x"y`}, {"b", "=", "q"}}}},
			grouping: []string{"pod"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Selectors, tc.want) || !reflect.DeepEqual(got.Grouping, tc.grouping) {
				t.Errorf("got %+v / %v\nwant %+v / %v", got.Selectors, got.Grouping, tc.want, tc.grouping)
			}
		})
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	for _, expr := range []string{
		`sum(rate(x[5m])`,                 // unbalanced
		`rate(x{a="b}[5m])`,               // unterminated string
		`rate(x[$__rate_interval])`,       // a dashboard variable left in
		`x{a}`,                            // a matcher without operator
		`1 + 2`,                           // no metric
		`sum by (pod) (rate(x[5m]))) > 0`, // unbalanced the other way
		`rate(x[5m]) ; x`,                 // a character PromQL does not have
	} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("%s: no error", expr)
		}
	}
}

func family(name string, typ dto.MetricType, series ...map[string]string) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum()}
	for _, labels := range series {
		m := &dto.Metric{}
		for k, v := range labels {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(k), Value: proto.String(v)})
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

func TestCheck(t *testing.T) {
	scraped := map[string]*dto.MetricFamily{
		"decisions_total":  family("decisions_total", dto.MetricType_COUNTER, map[string]string{"webhook": "/a", "decision": "errored"}),
		"latency_seconds":  family("latency_seconds", dto.MetricType_HISTOGRAM, map[string]string{"webhook": "/a"}),
		"violations_total": family("violations_total", dto.MetricType_COUNTER, map[string]string{"namespace": "team-a", "mode": "enforce"}),
	}
	fams := Families(scraped, map[string]string{"namespace": "fiw", "pod": "fiw-0"})
	tests := map[string]struct {
		expr    string
		wantErr string // "" for none
	}{
		"a counter with its labels and a target label":   {expr: `sum by (pod, webhook) (rate(decisions_total{namespace="fiw", decision="errored"}[5m]))`},
		"a histogram's buckets grouped by le":            {expr: `histogram_quantile(0.9, sum by (le, webhook) (rate(latency_seconds_bucket[5m])))`},
		"a metric's own namespace is exported_namespace": {expr: `sum by (exported_namespace) (violations_total{mode="enforce"})`},
		"a misspelt metric":                              {expr: `rate(decision_total[5m])`, wantErr: "decision_total is not exported"},
		"a label the metric does not have":               {expr: `decisions_total{code="500"}`, wantErr: "has no label code"},
		"a value no series has":                          {expr: `decisions_total{decision="error"}`, wantErr: `no series with decision="error"`},
		"a regular expression no value matches":          {expr: `decisions_total{webhook=~"/b.*"}`, wantErr: `no series with webhook=~"/b.*"`},
		"grouping by a label no selected metric has":     {expr: `sum by (mandate) (violations_total)`, wantErr: "grouping label mandate"},
		"the object namespace under its scraped name":    {expr: `violations_total{namespace="team-a"}`, wantErr: `no series with namespace="team-a"`},
		"le outside a histogram's buckets":               {expr: `sum by (le) (decisions_total)`, wantErr: "grouping label le"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			errs := Check(e, fams)
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("unexpected: %v", errs)
			case tc.wantErr != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.wantErr)):
				t.Errorf("got %v, want an error with %q", errs, tc.wantErr)
			}
		})
	}
}
