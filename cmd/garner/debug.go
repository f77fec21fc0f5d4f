package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/pkg/web"
)

// mountDebug adds the admin endpoints that look inside the aggregator and
// the receivers: /debug/cardinality (top metric names by series) and
// /debug/bad-lines (the last skipped lines, with reason and source).
func mountDebug(srv *web.Server, cfg *config.Config, agg *aggregator.Aggregator, lines *receiver.Lines) {
	srv.HandleAdmin("GET /debug/cardinality", "debug_cardinality", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 20
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 10000 {
				web.WriteError(w, http.StatusBadRequest, "bad_request", "limit must be a whole number from 1 to 10000")
				return
			}
			limit = n
		}
		// Without max-series-per-metric the shards count the names when
		// asked: bounded, so that a stuck aggregator does not hang the
		// request.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		total, top, err := agg.Cardinality(ctx, limit)
		if err != nil {
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the aggregator's shards did not answer within 10s: "+err.Error())
			return
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{
			"series": total, "max_series": cfg.MaxSeries, "max_series_per_metric": cfg.MaxSeriesPerMetric,
			"cardinality_overflow": cfg.CardinalityOverflow, "top": top,
		})
	}))
	srv.HandleAdmin("GET /debug/bad-lines", "debug_bad_lines", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		web.WriteJSON(w, http.StatusOK, map[string]any{"lines": lines.RecentBadLines()})
	}))
}
