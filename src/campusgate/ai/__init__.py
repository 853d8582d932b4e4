"""The AI gateway: one OpenAI-compatible API in front of many model providers.

This package is built sans-IO first (``docs/architecture.md``, decision 6): the
canonical request, response and stream chunk are OpenAI Chat Completions' own JSON
(:mod:`campusgate.ai.types`); each provider module (:mod:`campusgate.ai.providers`)
translates them to its wire format and back -- requests, responses, errors and
streams fed in any split of bytes -- and each client-facing API other than Chat
Completions (:mod:`campusgate.ai.api`: Anthropic Messages, OpenAI Responses)
translates to and from the canonical form.  The HTTP calls, routing, budgets and
accounting are a thin async shell around these.
"""
