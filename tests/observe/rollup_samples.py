"""Generated traffic for the roll-up and analytics tests, with exact aggregates."""

from __future__ import annotations

import math
import random

from access_samples import BASE

from campusgate.observe.record import AccessRecord

ROUTES = [f"route-{n}" for n in range(4)]
CONSUMERS = [f"consumer-{n}" for n in range(6)] + [None]
STATUSES = [200, 200, 200, 200, 201, 404, 429, 500, 502, 0]
START = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight


def generate(count: int, seconds: float, seed: int = 7, start: float = START
             ) -> list[AccessRecord]:
    """``count`` records spread over ``seconds`` from ``start`` (sorted by time)."""
    rng = random.Random(seed)
    records = []
    for n in range(count):
        route = rng.randrange(len(ROUTES))
        status = rng.choice(STATUSES)
        ai = route == 3
        latency = (rng.lognormvariate(3, 0.8) if rng.random() < 0.8
                   else rng.uniform(200, 900))
        records.append(BASE._replace(time=start + rng.random() * seconds, request_id=f"req-{n}",
            route=ROUTES[route], service=f"svc-{route}", consumer=rng.choice(CONSUMERS),
            upstream=f"10.0.0.{route}:80", status=status, bytes_in=rng.randrange(1000),
            bytes_out=rng.randrange(50_000), latency_ms=latency,
            upstream_latency_ms=None if status == 0 else latency * 0.9,
            rate_limit="limited" if status == 429 else "allowed",
            error="upstream_timeout" if status == 502 else ("client_gone" if status == 0
                                                            else None),
            ai_model="gpt-fast" if ai else None,
            ai_input_tokens=rng.randrange(500) if ai else None,
            ai_output_tokens=rng.randrange(200) if ai else None,
            ai_cost=f"0.{rng.randrange(10**9):09d}" if ai else None,
        ))
    records.sort(key=lambda r: r.time)
    return records


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]
