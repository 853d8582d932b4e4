"""The AI plane of one worker: providers with their decrypted keys, the model router,
the connection pools to providers.

The worker makes one :class:`AiRuntime` and tells it each config revision's ``ai``
section (:meth:`AiRuntime.update`).  The :class:`~campusgate.ai.routing.ModelRouter` is
rebuilt per revision, but a target whose deployment did not change (same provider
type, URL, model, key, options) keeps its health -- a key disabled by a 401 stays
disabled until its configuration changes, and a reload does not forget a cooling
down.  The :class:`~campusgate.ai.client.ProviderClient` (its pools) lives as long as
the worker and is made at the first call, on the worker's loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from campusgate.ai.budgets import Budgets
from campusgate.ai.cache import ResponseCache
from campusgate.ai.client import ProviderClient
from campusgate.ai.directory_names import DirectoryNames, NameIndex
from campusgate.ai.pricing import ModelPrice, PriceOverrides, price_of
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment, Translator
from campusgate.ai.redaction import Redactor
from campusgate.ai.routing import ModelGroup, ModelRouter, Target
from campusgate.config.ai import SECRET_OPTIONS, AiConfig, AiModel, AiProvider
from campusgate.config.ai_redaction import AiRedaction
from campusgate.keyring import ENCRYPTED_PREFIX, Keyring, KeyringError
from campusgate.state.base import StateBackend
from campusgate.state.memory import MemoryState

__all__ = ["AiRuntime", "AiState"]

log = logging.getLogger("campusgate.ai")

#: Target prices an :class:`AiState` remembers (more: the memo starts over).
MAX_PRICES = 1024


@dataclass(frozen=True, eq=False)
class AiState:
    """What one revision serves with: read by a request from start to end."""

    config: AiConfig
    router: ModelRouter
    #: Provider name -> its settings.
    providers: dict[str, AiProvider] = field(default_factory=dict)
    #: Provider type -> its translator, looked up once per revision.
    translators: dict[str, Translator] = field(default_factory=dict)
    #: ``ai.redaction`` compiled (None when off).
    redactor: Redactor | None = None
    #: Model name -> its settings (``AiConfig.model`` scans a list).
    models: dict[str, AiModel] = field(default_factory=dict)
    #: ``ai.prices``, parsed once.
    prices: PriceOverrides = field(default_factory=lambda: PriceOverrides({}))
    #: Model name -> its only target, for the models every consumer may use that have
    #: one target and no fallbacks: their plan, on every call, is that target.
    single_targets: dict[str, Target] = field(default_factory=dict)
    #: Target id -> its price (None: unknown), looked up at its first call.
    _prices: dict[str, ModelPrice | None] = field(default_factory=dict)

    def translator_of(self, target: Target) -> Translator:
        kind = target.deployment.provider
        found = self.translators.get(kind)
        return found if found is not None else translator(kind)

    def price(self, target: Target) -> ModelPrice | None:
        """The price of a call to ``target`` (:func:`~campusgate.ai.pricing.price_of`),
        looked up once per target and revision.  ``provider/model`` targets are named
        by clients: past :data:`MAX_PRICES` remembered, the memo starts over."""
        prices = self._prices
        try:
            return prices[target.id]
        except KeyError:
            pass
        deployment = target.deployment
        found = price_of(deployment.provider, deployment.model, self.prices)
        if len(prices) >= MAX_PRICES:
            prices.clear()
        prices[target.id] = found
        return found


class AiRuntime:
    """``state`` gives the worker's state backend (the ``state`` setting) for the
    budgets and the response cache; without it they use a private in-process state.
    ``storage`` is the store the directory's names are read from (``ai.redaction``)."""

    def __init__(self, keyring: Keyring,
                 state: Callable[[], StateBackend] | None = None,
                 storage: str | None = None) -> None:
        self.keyring = keyring
        self.storage = storage
        self.names: DirectoryNames | None = None
        if state is None:
            own = MemoryState()
            state = lambda: own  # noqa: E731
        self.budgets = Budgets(state)
        self.cache = ResponseCache(state)
        self.state: AiState | None = None
        self._client: ProviderClient | None = None

    @property
    def client(self) -> ProviderClient:
        if self._client is None:
            self._client = ProviderClient(asyncio.get_running_loop())
        return self._client

    def update(self, config: AiConfig | None) -> None:
        """Serve the ``ai`` section of a new revision."""
        self.state = self.build(config)

    def build(self, config: AiConfig | None) -> AiState | None:
        """What the ``ai`` section of the revision about to be served serves with:
        made before the revision is swapped in, so a failure keeps the old one."""
        if config is None:
            self._names_of(None)
            return None
        deployments = {p.name: self._deployment_of(p) for p in config.providers}
        targets: dict[str, Target] = {}

        def target(provider: str, model: str, weight: int = 1) -> Target:
            base = deployments[provider]
            deployment = Deployment(base.provider, model, base.base_url, base.api_key,
                                    base.options)
            return Target(f"{provider}/{model}", provider, deployment, weight)

        groups: dict[str, ModelGroup] = {}
        for model in config.models:
            members = []
            for spec in model.targets:
                made = target(spec.provider, spec.model, spec.weight)
                targets.setdefault(made.id, made)
                members.append(made)
            groups[model.name] = ModelGroup(model.name, tuple(members), model.strategy,
                                            tuple(model.fallbacks))
        direct: dict[str, Callable[[str], Target]] = {
            name: functools.partial(target, name) for name in deployments
        } if config.direct_models else {}
        router = ModelRouter(groups, direct)
        if self.state is not None:
            old = self.state.router
            old_targets = {t.id: t for g in old.groups.values() for t in g.targets}
            router.health = {tid: health for tid, health in old.health.items()
                             if tid in targets and old_targets.get(tid) is not None
                             and old_targets[tid].deployment == targets[tid].deployment}
        redactor = (Redactor(config.redaction, self._names_of(config.redaction))
                    if config.redaction.enabled else None)
        models = {m.name: m for m in config.models}
        single = {name: group.targets[0] for name, group in groups.items()
                  if len(group.targets) == 1 and not group.fallbacks
                  and not models[name].consumers and not models[name].groups}
        return AiState(config, router, {p.name: p for p in config.providers},
                       {p.type: translator(p.type) for p in config.providers},
                       redactor=redactor, models=models,
                       prices=PriceOverrides.parse(config.prices), single_targets=single)

    def _names_of(self, redaction: AiRedaction | None) -> Callable[[], NameIndex | None]:
        """Keep loading the directory's names while a revision redacts them (loaded in
        the background: until then, none); what gives the current index."""
        if redaction is None or not redaction.names_enabled or self.storage is None:
            if self.names is not None:
                self.names.stop()
            return lambda: None
        if self.names is None or self.names.storage != self.storage:
            if self.names is not None:
                self.names.stop()
            self.names = DirectoryNames(self.storage)
        self.names.start(redaction.names.refresh)
        names = self.names
        return lambda: names.index

    def _deployment_of(self, provider: AiProvider) -> Deployment:
        """The provider's deployment template (model left empty), secrets decrypted."""
        key = provider.api_key
        if key is None and provider.api_key_encrypted is not None:
            key = self._decrypt(provider.name, "api_key", provider.api_key_encrypted)
        options = dict(provider.options)
        for name in SECRET_OPTIONS:
            value = options.get(name)
            if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX):
                options[name] = self._decrypt(provider.name, name, value)
        base_url = provider.base_url or translator(provider.type).default_base_url
        return Deployment(provider.type, "", base_url, key, options)

    def _decrypt(self, provider: str, what: str, sealed: str) -> str | None:
        try:
            return self.keyring.decrypt(sealed)
        except KeyringError:
            log.error("AI provider %r: its %s cannot be decrypted with this installation's "
                      "secret key; calls to it will fail", provider, what)
            return None

    def close(self) -> None:
        if self.names is not None:
            self.names.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
