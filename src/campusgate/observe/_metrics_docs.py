"""The HELP text of every metric, and how each gauge merges over live workers."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["DOCS", "GAUGE_MERGE"]

DOCS: dict[str, str] = {
    # ---- from the access records
    "campusgate_http_requests_total": "Requests answered, by route, service, method and "
    "status code.",
    "campusgate_http_request_duration_seconds": "Total latency, from the request's head to "
    "the answer's last byte.",
    "campusgate_upstream_duration_seconds": "Upstream latency, from the request written "
    "upstream to the answer's last byte, by service and upstream target.",
    "campusgate_http_request_bytes_total": "Request bytes received from clients.",
    "campusgate_http_response_bytes_total": "Response bytes sent to clients.",
    "campusgate_http_errors_total": "Requests that failed, by error class.",
    "campusgate_rate_limited_total": "Requests refused by a rate limit.",
    "campusgate_upstream_retries_total": "Upstream attempts after the first.",
    "campusgate_ai_tokens_total": "AI tokens, by provider, model and kind "
    "(input, output, cached).",
    "campusgate_ai_cost_usd_total": "AI cost in US dollars, by provider and model.",
    # ---- read from the workers
    "campusgate_access_log_queue_depth": "Access records waiting for the batch writer.",
    "campusgate_access_log_queue_capacity": "Access records the queue holds at most.",
    "campusgate_access_log_dropped_total": "Access records dropped because the queue was full.",
    "campusgate_access_log_sink_records_total": "Access records each sink wrote or failed "
    "to write.",
    "campusgate_upstream_target_healthy": "1 when every worker considers the upstream "
    "target healthy, else 0.",
    "campusgate_upstream_connections_active": "Upstream connections in use, per target.",
    "campusgate_upstream_connections_idle": "Idle keep-alive upstream connections, per "
    "target address.",
    "campusgate_config_revision": "The oldest config revision any worker serves.",
    "campusgate_build_info": "The campusgate version and Python version (always 1).",
    "campusgate_workers": "Worker processes alive on this node.",
    "process_cpu_seconds_total": "CPU time of the worker processes (user and system), "
    "those that exited included.",
    "process_resident_memory_bytes": "Resident memory of the worker processes, summed.",
    "process_virtual_memory_bytes": "Virtual memory of the worker processes, summed.",
    "process_open_fds": "Open file descriptors of the worker processes, summed.",
    "process_max_fds": "The file descriptor limit of a worker process.",
    "process_start_time_seconds": "Start time of the oldest worker process (epoch seconds).",
}

#: How a gauge merges over the live workers (default: summed).
GAUGE_MERGE: dict[str, Callable[[float, float], float]] = {
    "campusgate_upstream_target_healthy": min,
    "campusgate_config_revision": min,
    "campusgate_build_info": max,
    "process_max_fds": max,
    "process_start_time_seconds": min,
}
