"""Response shapes of the admin API (request bodies are the config models themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from campusgate.config.model import Entities, Route

__all__ = [
    "ChangeView",
    "ConfigChangeResult",
    "ConfigView",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfo",
    "Health",
    "Page",
    "RevisionView",
    "RouteView",
    "error_responses",
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list of objects."""

    data: list[T]


class ErrorDetail(BaseModel):
    path: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"]


class ConfigView(BaseModel):
    revision: int
    config: Entities


class ChangeView(BaseModel):
    action: Literal["created", "updated", "deleted"]
    kind: Literal["upstream", "service", "route", "plugin"]
    name: str


class ConfigChangeResult(BaseModel):
    revision: int
    changed: bool
    changes: list[ChangeView]


class RevisionView(BaseModel):
    revision: int
    created_at: datetime
    source: str


class RouteView(Route):
    """A route, with the service it belongs to."""

    service: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses an endpoint may return."""
    return {status: {"model": ErrorBody} for status in statuses}
