/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "macro.h"
#include "metrics.h"

static const double bucket_le[METRIC_BUCKETS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30,
};

static const char *const route_names[_ROUTE_MAX] = {
        [ROUTE_HEALTH] = "/", [ROUTE_RUN] = "/run",
        [ROUTE_INVOKE] = "/system/python_executor/execute_code/invoke",
        [ROUTE_METRICS] = "/metrics", [ROUTE_OPENAPI] = "/openapi.json", [ROUTE_SESSIONS] = "/sessions",
        [ROUTE_OTHER] = "other",
};

const char *route_name(Route r)
{
        return r < _ROUTE_MAX ? route_names[r] : "other";
}

void metrics_observe(Histogram *h, double seconds)
{
        for (int i = 0; i < METRIC_BUCKETS; i++)
                if (seconds <= bucket_le[i]) {
                        h->buckets[i]++;
                        break;
                }
        h->count++;
        h->sum += seconds;
}

void metrics_request(Metrics *m, Route r, int code, double seconds)
{
        if (code >= 100 && code < 600)
                m->codes[r][code]++;
        metrics_observe(&m->request_seconds[r], seconds);
}

static void render_histogram(struct evbuffer *out, const char *name, const char *labels, const Histogram *h)
{
        uint64_t cum = 0;
        for (int i = 0; i < METRIC_BUCKETS; i++) {
                cum += h->buckets[i];
                evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
                                    bucket_le[i], (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                            (unsigned long long)h->count);
        if (*labels)
                evbuffer_add_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name,
                                    labels, (unsigned long long)h->count);
        else
                evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                                    (unsigned long long)h->count);
}

void metrics_render(const Metrics *m, struct evbuffer *out, unsigned queue_depth, unsigned active,
                    uint64_t zygote_restarts, size_t reply_bytes_held)
{
        evbuffer_add_printf(out, "# HELP pyrunner_requests_total HTTP requests by route and status code.\n"
                                 "# TYPE pyrunner_requests_total counter\n");
        for (int r = 0; r < _ROUTE_MAX; r++)
                for (int c = 100; c < 600; c++)
                        if (m->codes[r][c])
                                evbuffer_add_printf(out, "pyrunner_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                                                    route_names[r], c, (unsigned long long)m->codes[r][c]);
        evbuffer_add_printf(out, "# HELP pyrunner_executions_total Finished runs by status.\n"
                                 "# TYPE pyrunner_executions_total counter\n");
        for (int s = 0; s < _RUN_STATUS_MAX; s++)
                evbuffer_add_printf(out, "pyrunner_executions_total{status=\"%s\"} %llu\n", run_status_name(s),
                                    (unsigned long long)m->executions[s]);
        evbuffer_add_printf(out, "# HELP pyrunner_request_duration_seconds Time to answer a request.\n"
                                 "# TYPE pyrunner_request_duration_seconds histogram\n");
        for (int r = 0; r < _ROUTE_MAX; r++) {
                if (!m->request_seconds[r].count)
                        continue;
                char labels[96];
                snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
                render_histogram(out, "pyrunner_request_duration_seconds", labels, &m->request_seconds[r]);
        }
        evbuffer_add_printf(out, "# HELP pyrunner_execution_duration_seconds Wall time of runs.\n"
                                 "# TYPE pyrunner_execution_duration_seconds histogram\n");
        render_histogram(out, "pyrunner_execution_duration_seconds", "", &m->execution_seconds);
        evbuffer_add_printf(out,
                            "# HELP pyrunner_queue_depth Runs waiting for a sandbox.\n"
                            "# TYPE pyrunner_queue_depth gauge\npyrunner_queue_depth %u\n"
                            "# HELP pyrunner_active_sandboxes Runs executing now.\n"
                            "# TYPE pyrunner_active_sandboxes gauge\npyrunner_active_sandboxes %u\n"
                            "# HELP pyrunner_zygote_restarts_total Zygotes started after the first.\n"
                            "# TYPE pyrunner_zygote_restarts_total counter\npyrunner_zygote_restarts_total %llu\n"
                            "# HELP pyrunner_reply_bytes_held Reply bytes their clients have not read yet.\n"
                            "# TYPE pyrunner_reply_bytes_held gauge\npyrunner_reply_bytes_held %zu\n",
                            queue_depth, active, (unsigned long long)zygote_restarts, reply_bytes_held);
}
