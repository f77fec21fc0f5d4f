package otlp

import (
	"context"
	"strings"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	logsv1 "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/model"
)

// SendEvent posts the event as one log record to logs_endpoint; without a
// logs_endpoint it does nothing.
func (c *Client) SendEvent(ctx context.Context, e *model.Event) error {
	if c.cfg.LogsEndpoint == "" {
		return nil
	}
	ld := c.logsData(e, time.Now())
	return c.sender.Send(ctx, c.logsReq, httpsend.One(1, func(dst []byte) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(dst, ld)
	}))
}

// logsData is an event as one log record.
func (c *Client) logsData(e *model.Event, now time.Time) *logsv1.LogsData {
	var res, tags []*commonv1.KeyValue
	for _, t := range e.Tags {
		k, v, _ := strings.Cut(t, ":")
		if c.resourceKeys[k] {
			res = putAttr(res, k, v)
		} else {
			tags = putAttr(tags, k, v)
		}
	}
	attrs := []*commonv1.KeyValue{
		{Key: "title", Value: str(e.Title)},
		{Key: "text", Value: str(e.Text)},
		{Key: "source", Value: str(e.Source)},
		{Key: "priority", Value: str(e.Priority.String())},
		{Key: "alert_type", Value: str(e.AlertType.String())},
		{Key: "aggregation_key", Value: str(e.AggregationKey)},
		{Key: "source_type_name", Value: str(e.SourceTypeName)},
		{Key: "tags", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{Values: tags}}}},
	}
	if e.Hostname != "" {
		attrs = append(attrs, &commonv1.KeyValue{Key: "hostname", Value: str(e.Hostname)})
	}
	ts := now
	if e.DateHappened != 0 {
		ts = time.Unix(e.DateHappened, 0)
	}
	sevNum, sevText := severity(e.AlertType)
	rec := &logsv1.LogRecord{
		TimeUnixNano:         uint64(ts.UnixNano()),
		ObservedTimeUnixNano: uint64(now.UnixNano()),
		SeverityNumber:       sevNum,
		SeverityText:         sevText,
		Body:                 str(e.Text),
		Attributes:           attrs,
	}
	return &logsv1.LogsData{ResourceLogs: []*logsv1.ResourceLogs{{
		Resource:  &resourcev1.Resource{Attributes: res},
		ScopeLogs: []*logsv1.ScopeLogs{{Scope: c.scope, LogRecords: []*logsv1.LogRecord{rec}}},
	}}}
}

func severity(a model.AlertType) (logsv1.SeverityNumber, string) {
	switch a {
	case model.AlertWarning:
		return logsv1.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	case model.AlertError:
		return logsv1.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
	}
	return logsv1.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
}
