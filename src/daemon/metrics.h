/* SPDX-License-Identifier: MIT */
#pragma once

/* Counters and histograms for GET /metrics (Prometheus text format). */

#include <event2/buffer.h>
#include <stdint.h>

#include "result.h"

enum { METRIC_BUCKETS = 12 };

typedef struct Histogram {
        uint64_t buckets[METRIC_BUCKETS]; /* cumulative on output, not here */
        uint64_t count;
        double sum;
} Histogram;

typedef enum Route {
        ROUTE_HEALTH,
        ROUTE_RUN,
        ROUTE_INVOKE,
        ROUTE_METRICS,
        ROUTE_OPENAPI,
        ROUTE_SESSIONS,
        ROUTE_OTHER,
        _ROUTE_MAX,
} Route;

typedef struct Metrics {
        uint64_t requests[_ROUTE_MAX][6]; /* by route and status class 1xx..5xx + index 0 unused */
        uint64_t codes[_ROUTE_MAX][600];  /* by route and exact code */
        uint64_t executions[_RUN_STATUS_MAX];
        Histogram request_seconds[_ROUTE_MAX];
        Histogram execution_seconds;
} Metrics;

const char *route_name(Route r);
void metrics_observe(Histogram *h, double seconds);
void metrics_request(Metrics *m, Route r, int code, double seconds);
/* Appends the whole exposition; gauges are passed in. */
void metrics_render(const Metrics *m, struct evbuffer *out, unsigned queue_depth, unsigned active,
                    uint64_t zygote_restarts, size_t reply_bytes_held);
