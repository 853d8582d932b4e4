"""Load balancing over an upstream's targets, with passive health (sans-IO).

A :class:`Balancer` is compiled from one :class:`~campusgate.config.model.Upstream`
and asked for a target on every request.  It does no I/O and never reads a clock:
the caller passes ``now`` (monotonic seconds).

Algorithms
    ``round-robin``
        nginx's smooth weighted round-robin.  The sequence over one cycle is
        precomputed whenever the set of pickable targets changes, so a pick is a list
        index (O(1)); for weight sets whose cycle is longer than
        ``_SCHEDULE_LIMIT`` the same algorithm runs live (O(n)).
    ``least-connections``
        fewest active connections per unit of weight; ties are broken by smooth
        weighted round-robin among the tied targets, as nginx's ``least_conn`` does.
        O(n) per pick.
    ``consistent-hashing``
        a Ketama-style ring (160 virtual nodes per target at mean weight, scaled by
        weight), looked up with ``bisect`` (O(log n)).  A ring, rather than jump
        hashing, because a target may leave from the middle of the list and an
        unhealthy target's keys must move to one neighbour and come back later;
        rather than rendezvous hashing, because that costs one hash per target per
        request.  Without a hash value it falls back to round-robin.

Health
    A target is pickable when its weight is above 0, it is not passively ejected and,
    when active checks are on, the active checker has not marked it unhealthy
    ("unknown" counts as healthy).  ``max_failures`` consecutive failures eject a
    target for ``cooldown`` seconds.  After the cool-down the target is half-open:
    exactly one request is let through (the trial; it holds the target for another
    cool-down); its success restores the target, its failure ejects it again.

Retries
    ``exclude`` names targets already tried by this request.  A pick prefers an
    untried healthy target, else a tried healthy one, else returns ``None`` (the
    proxy answers 503).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import reduce
from hashlib import blake2b
from typing import Literal

from campusgate.config.model import Upstream

__all__ = ["ActiveState", "Balancer", "TargetState"]

ActiveState = Literal["unknown", "healthy", "unhealthy"]

#: Longest precomputed round-robin cycle; longer ones run the algorithm live.
_SCHEDULE_LIMIT = 1024
#: Virtual nodes on the hash ring for a target of mean weight.
_VNODES = 160


def _hash64(data: str) -> int:
    """A hash that is the same in every process (``hash()`` of str is salted)."""
    return int.from_bytes(blake2b(data.encode(), digest_size=8).digest(), "big")


@dataclass(slots=True, eq=False)
class TargetState:
    """One target of an upstream and what the balancer knows about it."""

    address: str
    host: str
    port: int
    weight: int
    #: Consecutive failures reported by the proxy (passive health).
    failures: int = 0
    #: Monotonic time until which the target is ejected; 0.0 when it is not.
    ejected_until: float = 0.0
    #: Ejected once and not yet proven healthy again: one failure re-ejects it.
    half_open: bool = False
    #: The half-open trial request is out; its answer decides.
    on_trial: bool = False
    #: The active checker's verdict.
    active: ActiveState = "unknown"
    #: Connections in use (least-connections accounting).
    connections: int = 0
    last_failure: str = ""
    #: Times ejected so far, passively or by the active checker (never reset; kept
    #: across reloads): the alerts' ``target-ejections`` rule reads its increase.
    ejections: int = 0
    #: Smooth weighted round-robin state (live round-robin, least-connections ties).
    current_weight: int = 0

    def is_ejected(self, now: float) -> bool:
        return self.ejected_until > now


def _parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _smooth_pick(peers: Sequence[TargetState]) -> TargetState:
    """One step of nginx's smooth weighted round-robin over ``peers`` (non-empty)."""
    best = peers[0]
    total = 0
    for peer in peers:
        peer.current_weight += peer.weight
        total += peer.weight
        if peer.current_weight > best.current_weight:
            best = peer
    best.current_weight -= total
    return best


def _schedule(peers: Sequence[TargetState]) -> list[TargetState] | None:
    """One full smooth round-robin cycle over ``peers``, or None if it is too long."""
    divisor = reduce(math.gcd, (p.weight for p in peers))
    weights = [p.weight // divisor for p in peers]
    cycle = sum(weights)
    if cycle > _SCHEDULE_LIMIT:
        return None
    current = [0] * len(peers)
    out: list[TargetState] = []
    for _ in range(cycle):
        best = 0
        for i, weight in enumerate(weights):
            current[i] += weight
            if current[i] > current[best]:
                best = i
        current[best] -= cycle
        out.append(peers[best])
    return out


class Balancer:
    """Picks targets of one upstream; tracks their passive and active health."""

    def __init__(self, upstream: Upstream) -> None:
        self.name = upstream.name
        self.algorithm = upstream.algorithm
        self.hash_on = upstream.hash_on
        self.hash_key = upstream.hash_key
        active = upstream.healthchecks.active
        self._active_on = active is not None and active.enabled
        passive = upstream.healthchecks.passive
        self._passive_on = passive.enabled
        self._max_failures = passive.max_failures
        self._cooldown = passive.cooldown
        self._unhealthy_statuses = frozenset(passive.unhealthy_statuses)

        self.targets: dict[str, TargetState] = {}
        for spec in upstream.targets:
            host, port = _parse_address(spec.target)
            state = TargetState(spec.target, host, port, spec.weight)
            # A target listed twice gets the sum of its weights.
            if spec.target in self.targets:
                self.targets[spec.target].weight += spec.weight
            else:
                self.targets[spec.target] = state
        self._all = tuple(self.targets.values())

        self._ring_hashes: list[int] = []
        self._ring_targets: list[TargetState] = []
        if self.algorithm == "consistent-hashing":
            self._build_ring()

        # Derived from health; rebuilt lazily by _refresh when _next_event <= now.
        self._pickable: tuple[TargetState, ...] = ()
        self._pickable_set: frozenset[TargetState] = frozenset()
        self._schedule: list[TargetState] | None = None
        self._cursor = 0
        self._next_event = -math.inf

    # ------------------------------------------------------------ picking

    def pick(
        self, now: float, hash_value: str | None = None, exclude: Collection[str] = ()
    ) -> TargetState | None:
        """The target for the next request, or None when no target is healthy."""
        if now >= self._next_event:
            self._refresh(now)
        pickable = self._pickable
        if not pickable:
            return None
        if exclude and all(t.address in exclude for t in pickable):
            exclude = ()  # every healthy target was tried: try one again
        if self.algorithm == "least-connections":
            target = self._least_connections(exclude)
        elif hash_value is not None and self._ring_hashes:
            target = self._ring_lookup(hash_value, exclude)
        else:
            target = self._round_robin(exclude)
        if target.half_open:
            # The trial request: nobody else gets this target until it reports
            # back or another cool-down passes.
            target.on_trial = True
            target.ejected_until = now + self._cooldown
            self._next_event = -math.inf
        return target

    def _round_robin(self, exclude: Collection[str]) -> TargetState:
        schedule = self._schedule
        if schedule is None:
            peers = self._pickable
            if exclude:
                peers = tuple(t for t in peers if t.address not in exclude)
            return _smooth_pick(peers)
        size = len(schedule)
        cursor = self._cursor
        for _ in range(size):
            target = schedule[cursor]
            cursor = cursor + 1 if cursor + 1 < size else 0
            if not exclude or target.address not in exclude:
                break
        self._cursor = cursor
        return target

    def _least_connections(self, exclude: Collection[str]) -> TargetState:
        best: list[TargetState] = []
        for t in self._pickable:
            if exclude and t.address in exclude:
                continue
            if not best:
                best.append(t)
                continue
            lead = best[0]
            # t.conn / t.weight vs lead.conn / lead.weight, without division
            left, right = t.connections * lead.weight, lead.connections * t.weight
            if left < right:
                best = [t]
            elif left == right:
                best.append(t)
        return best[0] if len(best) == 1 else _smooth_pick(best)

    def _ring_lookup(self, hash_value: str, exclude: Collection[str]) -> TargetState:
        hashes, owners, pickable = self._ring_hashes, self._ring_targets, self._pickable_set
        size = len(hashes)
        index = bisect_right(hashes, _hash64(hash_value))
        for step in range(size):
            target = owners[(index + step) % size]
            if target in pickable and (not exclude or target.address not in exclude):
                return target
        raise AssertionError("unreachable: the ring holds every pickable target")

    def _build_ring(self) -> None:
        weighted = [t for t in self._all if t.weight > 0]
        if not weighted:
            return
        total = sum(t.weight for t in weighted)
        points: list[tuple[int, int, TargetState]] = []
        for order, t in enumerate(weighted):
            count = max(1, round(_VNODES * len(weighted) * t.weight / total))
            # order breaks (astronomically unlikely) hash ties deterministically
            points.extend((_hash64(f"{t.address}#{i}"), order, t) for i in range(count))
        points.sort(key=lambda p: (p[0], p[1]))
        self._ring_hashes = [p[0] for p in points]
        self._ring_targets = [p[2] for p in points]

    def _refresh(self, now: float) -> None:
        pickable: list[TargetState] = []
        next_event = math.inf
        for t in self._all:
            if t.ejected_until > now:
                next_event = min(next_event, t.ejected_until)
                continue
            t.ejected_until = 0.0
            if self._active_on and t.active == "unhealthy":
                continue
            if t.weight > 0:
                pickable.append(t)
        self._next_event = next_event
        self._pickable = tuple(pickable)
        self._pickable_set = frozenset(pickable)
        self._schedule = _schedule(pickable) if pickable else []
        self._cursor = 0
        for t in pickable:
            t.current_weight = 0

    # ------------------------------------------------------------ hash input

    def hash_input(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        client_ip: str,
        consumer: str | None = None,
    ) -> str | None:
        """The value to hash for this request per ``hash_on``; None when there is none.

        ``headers`` are (lower-case name, value) pairs.  Only consistent-hashing
        upstreams hash; for the others this returns None without looking.
        """
        if self.algorithm != "consistent-hashing":
            return None
        if self.hash_on == "ip":
            return client_ip
        if self.hash_on == "consumer":
            return consumer
        key = (self.hash_key or "").lower().encode("latin-1")
        if self.hash_on == "header":
            for name, value in headers:
                if name == key:
                    return value.decode("latin-1")
            return None
        cookie_name = (self.hash_key or "").encode("latin-1")
        for name, value in headers:
            if name != b"cookie":
                continue
            for pair in value.split(b";"):
                k, sep, v = pair.strip().partition(b"=")
                if sep and k == cookie_name:
                    return v.strip(b'"').decode("latin-1")
        return None

    # ------------------------------------------------------------ accounting

    def on_connect(self, target: TargetState) -> None:
        target.connections += 1

    def on_release(self, target: TargetState) -> None:
        if target.connections > 0:
            target.connections -= 1

    # ------------------------------------------------------------ passive health

    def is_failure_status(self, status: int) -> bool:
        """Whether an upstream answer with ``status`` counts as a passive failure."""
        return status in self._unhealthy_statuses

    def report_success(self, target: TargetState, now: float) -> None:
        """A request to ``target`` succeeded; a half-open target is restored."""
        if target.is_ejected(now) and not target.on_trial:
            return  # a late answer from before the ejection
        if target.half_open:
            target.half_open = target.on_trial = False
            target.ejected_until = 0.0
            self._next_event = -math.inf
        target.failures = 0

    def report_failure(self, target: TargetState, now: float, reason: str) -> bool:
        """A request to ``target`` failed; True when this failure ejected it."""
        target.last_failure = reason
        if not self._passive_on:
            return False
        if target.is_ejected(now) and not target.on_trial:
            return False  # a late answer from before the ejection
        if target.half_open:
            target.on_trial = False
            target.ejections += 1
            target.ejected_until = now + self._cooldown
            self._next_event = -math.inf
            return True
        target.failures += 1
        if target.failures < self._max_failures:
            return False
        target.ejections += 1
        target.ejected_until = now + self._cooldown
        target.half_open = True
        self._next_event = -math.inf
        return True

    # ------------------------------------------------------------ active health

    def set_active_health(self, address: str, healthy: bool) -> bool:
        """Record the active checker's verdict; False when ``address`` is unknown."""
        target = self.targets.get(address)
        if target is None:
            return False
        verdict: ActiveState = "healthy" if healthy else "unhealthy"
        if target.active != verdict:
            target.active = verdict
            target.ejections += not healthy
            self._next_event = -math.inf
        return True

    # ------------------------------------------------------------ reporting, reload

    def health(self, now: float) -> dict[str, dict[str, object]]:
        """Per target address: what the admin API shows about it."""
        out: dict[str, dict[str, object]] = {}
        for t in self._all:
            ejected_for = max(0.0, t.ejected_until - now)
            active_bad = self._active_on and t.active == "unhealthy"
            out[t.address] = {
                "healthy": ejected_for == 0.0 and not active_bad,
                "weight": t.weight,
                "failures": t.failures,
                "active": t.active if self._active_on else "unknown",
                "ejected_for": round(ejected_for, 3),
                "half_open": t.half_open,
                "connections": t.connections,
                "last_failure": t.last_failure,
            }
        return out

    def carry_over(self, old: Balancer) -> None:
        """Keep the health of targets that ``old`` (the previous revision) also had.

        Passive state (failures, ejection, half-open) and the active verdict move
        over; connection counts do not, since connections opened through ``old``
        are released to ``old``.
        """
        for address, target in self.targets.items():
            previous = old.targets.get(address)
            if previous is None:
                continue
            target.failures = previous.failures
            target.ejected_until = previous.ejected_until
            target.half_open = previous.half_open
            target.active = previous.active
            target.last_failure = previous.last_failure
            target.ejections = previous.ejections
        self._next_event = -math.inf
