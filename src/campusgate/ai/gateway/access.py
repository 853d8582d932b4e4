"""Which models a consumer may use, and the plan of targets for a model name.

A model with ``consumers`` or ``groups`` set is only for them; to anyone else it does
not exist (404 ``model_not_found``, the same answer as for a name nobody configured,
so its existence is not revealed).  A bare model name served by several models
(``gpt-4o-mini`` behind ``gpt-fast`` and ``gpt-cheap``) plans over those the consumer
may use.  Fallbacks of an allowed model are the operator's choice and are followed.
``provider/model`` names exist only with ``ai.direct_models`` on.  A target cooling
down (after a 429, say) is tried after every ready one, fallbacks included.
"""

from __future__ import annotations

from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.runtime import AiState
from campusgate.ai.routing import Target, UnknownModel
from campusgate.proxy.consumers import ConsumerInfo

__all__ = ["model_plan", "not_found", "visible_models"]


def not_found(name: str) -> ProviderError:
    return ProviderError("not_found", f"The model {name!r} does not exist or you do not "
                         "have access to it.", status=404, code="model_not_found")


def _allowed(state: AiState, group: str, consumer: ConsumerInfo | None) -> bool:
    model = state.models.get(group)
    if model is None:  # a provider/model name (direct_models)
        return True
    if consumer is None:
        return model.allows(None, ())
    return model.allows(consumer.name, consumer.groups)


def model_plan(state: AiState, name: str, consumer: ConsumerInfo | None,
               now: float) -> list[Target]:
    """The targets to try for ``name``, in order; ``not_found`` when there is no such
    model for this consumer."""
    router = state.router
    single = state.single_targets.get(name)
    if single is not None:  # the common case: what the general walk below gives
        known = router.health.get(single.id)
        if known is None or known.disabled is None:
            return [single]
        raise _all_refused(name)
    try:
        groups = router.resolve(name)
    except UnknownModel:
        raise not_found(name) from None
    allowed = [g for g in groups if _allowed(state, g.name, consumer)]
    if not allowed:
        raise not_found(name)
    if len(allowed) == len(groups):
        plan = router.plan(name, now)
    else:
        plan = []
        for group in allowed:
            plan += [t for t in router.plan(group.name, now) if t not in plan]
    # The router ranks each group apart: a group's resting targets come before the
    # next group's ready ones.  Across the plan, a target cooling down comes last.
    health = router.health
    resting = [t for t in plan if t.id in health and health[t.id].cooling_until > now]
    if resting:
        plan = [t for t in plan if t not in resting] + resting
    if not plan:  # every target disabled by a 401/403
        raise _all_refused(name)
    return plan


def _all_refused(name: str) -> ProviderError:
    return ProviderError("overloaded", f"no usable provider for {name!r}: every target's "
                         "credentials were refused", status=503)


def visible_models(state: AiState, consumer: ConsumerInfo | None) -> list[str]:
    """The configured model names this consumer may use, in configuration order."""
    return [m.name for m in state.config.models if _allowed(state, m.name, consumer)]
