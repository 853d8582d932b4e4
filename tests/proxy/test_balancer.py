"""The balancer: algorithms, passive health, exclusion, reload (pure, explicit time)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from campusgate.config.model import Upstream
from campusgate.proxy.balancer import Balancer

A, B, C, D = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"
NAMES = {A: "a", B: "b", C: "c", D: "d"}


def upstream(targets: dict[str, int], **extra: Any) -> Upstream:
    return Upstream.model_validate(
        {
            "name": "up",
            "targets": [{"target": t, "weight": w} for t, w in targets.items()],
            **extra,
        }
    )


def sequence(balancer: Balancer, count: int, now: float = 0.0) -> str:
    out = []
    for _ in range(count):
        target = balancer.pick(now)
        out.append("-" if target is None else NAMES[target.address])
    return "".join(out)


def passive(max_failures: int = 2, cooldown: float = 10.0) -> dict[str, Any]:
    return {"healthchecks": {"passive": {"max_failures": max_failures, "cooldown": cooldown}}}


# ---------------------------------------------------------------- round-robin


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((5, 1, 1), "aabacaa"),  # nginx's documented smooth sequence
        ((1, 1, 1), "abc"),
        ((100, 100, 100), "abc"),  # scaled weights give the same cycle
        ((2, 1, 0), "aba"),  # weight 0 is never picked
        ((0, 3, 0), "bbb"),
        ((3, 2, 0), "ababa"),
    ],
)
def test_smooth_weighted_round_robin_cycle(weights: tuple[int, ...], expected: str) -> None:
    balancer = Balancer(upstream(dict(zip((A, B, C), weights, strict=True))))
    assert sequence(balancer, len(expected) * 3) == expected * 3


def test_round_robin_long_cycle_keeps_exact_proportions() -> None:
    # gcd 1 and a cycle of 7001 picks: beyond the precomputed schedule
    balancer = Balancer(upstream({A: 5001, B: 1000, C: 1000}))
    assert sequence(balancer, 7) == "aabacaa"  # as smooth as the 5/1/1 cycle
    counts = Counter(sequence(balancer, 7001 - 7))
    assert counts == {"a": 5001 - 5, "b": 1000 - 1, "c": 1000 - 1}


def test_all_weights_zero_means_no_target() -> None:
    balancer = Balancer(upstream({A: 0, B: 0}))
    assert balancer.pick(0.0) is None


# ---------------------------------------------------------------- least-connections


def test_least_connections_prefers_fewest_open_connections() -> None:
    balancer = Balancer(upstream({A: 1, B: 1, C: 1}, algorithm="least-connections"))
    held = []
    for _ in range(3):
        target = balancer.pick(0.0)
        assert target is not None
        balancer.on_connect(target)
        held.append(target.address)
    assert sorted(held) == [A, B, C]  # one each, never two on one target
    balancer.on_release(balancer.targets[B])
    assert [balancer.pick(0.0).address for _ in range(3)] == [B, B, B]  # type: ignore[union-attr]


def test_least_connections_weights_the_count() -> None:
    balancer = Balancer(upstream({A: 3, B: 1}, algorithm="least-connections"))
    for _ in range(2):
        balancer.on_connect(balancer.targets[A])
    # A: 2 conns / weight 3 = 0.67 < B: 1 conn / weight 1
    balancer.on_connect(balancer.targets[B])
    assert balancer.pick(0.0).address == A  # type: ignore[union-attr]
    balancer.on_connect(balancer.targets[A])  # A: 3/3 == B: 1/1 -> tie
    picks = Counter(balancer.pick(0.0).address for _ in range(4))  # type: ignore[union-attr]
    assert picks == {A: 3, B: 1}  # ties follow the weights


def test_least_connections_ties_are_weighted_round_robin() -> None:
    balancer = Balancer(upstream({A: 5, B: 1, C: 1}, algorithm="least-connections"))
    assert sequence(balancer, 14) == "aabacaa" * 2


def test_release_never_goes_negative() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, algorithm="least-connections"))
    balancer.on_release(balancer.targets[A])
    balancer.on_connect(balancer.targets[B])
    assert balancer.pick(0.0).address == A  # type: ignore[union-attr]
    assert balancer.health(0.0)[A]["connections"] == 0


# ---------------------------------------------------------------- consistent hashing


def hashed(targets: dict[str, int], **extra: Any) -> Balancer:
    return Balancer(upstream(targets, algorithm="consistent-hashing", **extra))


KEYS = [f"user-{i}" for i in range(2000)]


def mapping(balancer: Balancer, now: float = 0.0) -> dict[str, str]:
    out = {}
    for key in KEYS:
        target = balancer.pick(now, key)
        assert target is not None
        out[key] = target.address
    return out


def test_same_key_same_target_across_instances() -> None:
    first = mapping(hashed({A: 100, B: 100, C: 100}))
    assert first == mapping(hashed({A: 100, B: 100, C: 100}))
    shares = Counter(first.values())
    assert set(shares) == {A, B, C}
    assert all(400 < n < 940 for n in shares.values()), shares  # roughly a third each


def test_removing_a_target_moves_only_its_keys() -> None:
    before = mapping(hashed({A: 100, B: 100, C: 100, D: 100}))
    after = mapping(hashed({A: 100, B: 100, C: 100}))
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == D}
    assert 0.15 < len(moved) / len(KEYS) < 0.35


def test_weights_shape_the_key_shares() -> None:
    shares = Counter(mapping(hashed({A: 300, B: 100})).values())
    assert 0.65 < shares[A] / len(KEYS) < 0.85


def test_ejected_targets_keys_move_and_come_back_after_cooldown() -> None:
    balancer = hashed({A: 100, B: 100, C: 100}, **passive(max_failures=1, cooldown=10))
    before = mapping(balancer)
    assert balancer.report_failure(balancer.targets[A], 1.0, "connect refused")
    during = mapping(balancer, now=2.0)
    assert A not in during.values()
    assert all(during[k] == before[k] for k in KEYS if before[k] != A)
    key_of_a = next(k for k in KEYS if before[k] == A)
    trial = balancer.pick(11.0, key_of_a)
    assert trial is not None and trial.address == A  # half-open trial
    balancer.report_success(trial, 11.1)
    assert mapping(balancer, now=12.0) == before


def test_without_hash_value_consistent_hashing_round_robins() -> None:
    assert sequence(hashed({A: 2, B: 1}), 6) == "abaaba"


@pytest.mark.parametrize(
    ("hash_on", "hash_key", "headers", "expected"),
    [
        ("ip", None, [], "192.0.2.7"),
        ("consumer", None, [], "district-app"),
        ("header", "X-Tenant", [(b"x-tenant", b"north")], "north"),
        ("header", "X-Tenant", [(b"x-other", b"north")], None),
        ("cookie", "sid", [(b"cookie", b"a=1; sid=abc; b=2")], "abc"),
        ("cookie", "sid", [(b"cookie", b"a=1"), (b"cookie", b'sid="q"')], "q"),
        ("cookie", "sid", [(b"cookie", b"sidx=1")], None),
    ],
)
def test_hash_input(
    hash_on: str, hash_key: str | None, headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    balancer = hashed({A: 1}, hash_on=hash_on, hash_key=hash_key)
    assert balancer.hash_input(headers, "192.0.2.7", "district-app") == expected


def test_hash_input_is_none_for_other_algorithms() -> None:
    assert Balancer(upstream({A: 1})).hash_input([], "192.0.2.7") is None


# ---------------------------------------------------------------- passive health


def test_consecutive_failures_eject_for_the_cooldown() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=3, cooldown=10)))
    a = balancer.targets[A]
    assert not balancer.report_failure(a, 1.0, "502")
    balancer.report_success(a, 1.1)  # a success resets the count
    assert not balancer.report_failure(a, 1.2, "502")
    assert not balancer.report_failure(a, 1.3, "502")
    assert balancer.report_failure(a, 1.4, "502")
    assert sequence(balancer, 4, now=2.0) == "bbbb"
    assert sequence(balancer, 4, now=11.3) == "bbbb"  # still cooling down
    health = balancer.health(2.0)[A]
    assert health["healthy"] is False
    assert health["ejected_for"] == pytest.approx(9.4)
    assert health["last_failure"] == "502"


def test_half_open_lets_one_trial_through_and_success_restores() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=1, cooldown=10)))
    balancer.report_failure(balancer.targets[A], 0.0, "timeout")
    # after the cool-down A gets exactly one trial request until it reports back
    assert sorted(sequence(balancer, 4, now=10.0)) == ["a", "b", "b", "b"]
    balancer.report_success(balancer.targets[A], 10.5)
    assert sequence(balancer, 4, now=10.6) in ("abab", "baba")
    assert balancer.health(10.6)[A]["healthy"] is True


def test_half_open_failure_ejects_again_at_once() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=3, cooldown=10)))
    a = balancer.targets[A]
    for t in (0.0, 0.1, 0.2):
        balancer.report_failure(a, t, "refused")
    assert "a" in sequence(balancer, 2, now=10.5)
    assert balancer.report_failure(a, 10.6, "refused")  # one failure is enough now
    assert sequence(balancer, 4, now=11.0) == "bbbb"
    assert sequence(balancer, 4, now=20.7).count("a") == 1  # the next trial


def test_unanswered_trial_gives_another_trial_after_a_cooldown() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=1, cooldown=5)))
    balancer.report_failure(balancer.targets[A], 0.0, "refused")
    assert sequence(balancer, 4, now=5.0).count("a") == 1
    assert sequence(balancer, 4, now=9.0).count("a") == 0
    assert sequence(balancer, 4, now=10.0).count("a") == 1


def test_late_failures_of_an_ejected_target_do_not_extend_the_ejection() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=1, cooldown=10)))
    a = balancer.targets[A]
    balancer.report_failure(a, 0.0, "refused")
    assert not balancer.report_failure(a, 9.0, "refused")
    assert "a" in sequence(balancer, 2, now=10.0)


def test_late_success_of_an_ejected_target_does_not_restore_it() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=1, cooldown=10)))
    a = balancer.targets[A]
    balancer.report_failure(a, 0.0, "refused")
    balancer.report_success(a, 1.0)  # a slow request that started before the ejection
    assert sequence(balancer, 4, now=2.0) == "bbbb"


def test_passive_checks_disabled_never_eject() -> None:
    balancer = Balancer(
        upstream({A: 1, B: 1}, healthchecks={"passive": {"enabled": False, "max_failures": 1}})
    )
    assert not balancer.report_failure(balancer.targets[A], 0.0, "refused")
    assert sequence(balancer, 2, now=1.0) == "ab"


def test_all_targets_ejected_means_none() -> None:
    balancer = Balancer(upstream({A: 1, B: 1}, **passive(max_failures=1)))
    for target in balancer.targets.values():
        balancer.report_failure(target, 0.0, "refused")
    assert balancer.pick(1.0) is None


def test_failure_statuses_come_from_the_config() -> None:
    balancer = Balancer(
        upstream({A: 1}, healthchecks={"passive": {"unhealthy_statuses": [500, 503]}})
    )
    assert [balancer.is_failure_status(s) for s in (500, 502, 503, 200)] == [
        True, False, True, False,
    ]


# ---------------------------------------------------------------- active health


def test_active_verdict_counts_only_when_active_checks_are_on() -> None:
    on = Balancer(upstream({A: 1, B: 1}, healthchecks={"active": {"path": "/health"}}))
    off = Balancer(upstream({A: 1, B: 1}))
    for balancer in (on, off):
        assert balancer.set_active_health(A, False)
    assert sequence(on, 2) == "bb"
    assert sequence(off, 2) == "ab"
    assert on.health(0.0)[A]["active"] == "unhealthy"
    assert on.health(0.0)[B]["active"] == "unknown"  # unknown counts as healthy
    on.set_active_health(A, True)
    assert sequence(on, 2) == "ab"
    assert not on.set_active_health("10.9.9.9:80", True)


# ---------------------------------------------------------------- exclude (retries)


@pytest.mark.parametrize("algorithm", ["round-robin", "least-connections", "consistent-hashing"])
def test_exclude_prefers_untried_then_tried_then_none(algorithm: str) -> None:
    balancer = Balancer(upstream({A: 5, B: 1, C: 1}, algorithm=algorithm, **passive(1)))
    for _ in range(5):
        target = balancer.pick(0.0, "key", exclude={A, B})
        assert target is not None and target.address == C
    # every healthy target tried: one of them again rather than nothing
    again = balancer.pick(0.0, "key", exclude={A, B, C})
    assert again is not None
    balancer.report_failure(balancer.targets[C], 0.0, "refused")
    retry = balancer.pick(1.0, "key", exclude={A, B})
    assert retry is not None and retry.address in (A, B)
    for address in (A, B):
        balancer.report_failure(balancer.targets[address], 1.0, "refused")
    assert balancer.pick(2.0, "key", exclude={A}) is None


def test_exclude_on_a_long_cycle() -> None:
    balancer = Balancer(upstream({A: 5001, B: 1000, C: 1000}))
    picks = Counter(balancer.pick(0.0, exclude={A}).address for _ in range(4))  # type: ignore[union-attr]
    assert picks == {B: 2, C: 2}


# ---------------------------------------------------------------- reload


def test_carry_over_keeps_health_of_surviving_targets() -> None:
    settings = {"healthchecks": {"active": {}, "passive": {"max_failures": 2, "cooldown": 10}}}
    old = Balancer(upstream({A: 1, B: 1, C: 1}, **settings))
    old.report_failure(old.targets[A], 0.0, "refused")
    old.report_failure(old.targets[A], 0.1, "refused")
    old.report_failure(old.targets[B], 0.2, "refused")
    old.set_active_health(C, False)
    old.on_connect(old.targets[B])

    new = Balancer(upstream({A: 1, B: 2, C: 1, D: 1}, **settings))
    new.carry_over(old)
    health = new.health(1.0)
    assert health[A]["healthy"] is False and health[A]["ejected_for"] == pytest.approx(9.1)
    assert health[B]["failures"] == 1 and health[B]["weight"] == 2
    assert health[B]["connections"] == 0  # released to the old balancer
    assert health[C]["active"] == "unhealthy"
    assert health[D] == {
        "healthy": True, "weight": 1, "failures": 0, "active": "unknown",
        "ejected_for": 0.0, "half_open": False, "connections": 0, "last_failure": "",
    }
    assert set(sequence(new, 6, now=1.0)) == {"b", "d"}
    new.report_failure(new.targets[B], 1.0, "refused")  # the carried count continues
    assert set(sequence(new, 3, now=1.1)) == {"d"}


def test_duplicate_targets_add_their_weights() -> None:
    up = Upstream.model_validate(
        {"name": "up", "targets": [{"target": A, "weight": 1}, {"target": B, "weight": 1},
                                   {"target": A, "weight": 1}]}
    )
    assert sequence(Balancer(up), 3) == "aba"


def test_ipv6_target_address_is_split() -> None:
    up = Upstream.model_validate({"name": "up", "targets": [{"target": "[::1]:8080"}]})
    target = Balancer(up).pick(0.0)
    assert target is not None
    assert (target.host, target.port, target.address) == ("::1", 8080, "[::1]:8080")


def test_the_documented_example() -> None:
    text = (Path(__file__).parents[2] / "docs" / "load-balancing.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    [spec] = yaml.safe_load(example)["upstreams"]
    balancer = Balancer(Upstream.model_validate(spec))
    picks = Counter(balancer.pick(0.0).address for _ in range(4))  # type: ignore[union-attr]
    assert picks == {"10.0.0.11:9000": 2, "10.0.0.12:9000": 2}  # weight 0 never picked
    assert set(balancer.health(0.0)) == {"10.0.0.11:9000", "10.0.0.12:9000", "10.0.0.13:9000"}
