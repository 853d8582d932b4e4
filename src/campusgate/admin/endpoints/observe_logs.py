"""``/observe/logs``: search the access records, one request's records, CSV export.

The records live in the store's ``access_segments`` table (the ``store`` sink writes
one compressed segment per batch; :mod:`campusgate.observe.segment_scan` reads them
newest first).  Searches run on the store's own engine (``app.state.log_search``); whoever
builds the app may put another :class:`~campusgate.observe.logsearch.LogSearch` there.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from campusgate.admin.auth import require_admin
from campusgate.admin.context import admin_context
from campusgate.admin.errors import BadRequest, NotFound
from campusgate.admin.schemas import error_responses
from campusgate.observe.logsearch import (
    DEFAULT_EXPORT_ROWS,
    MAX_EXPORT_ROWS,
    InvalidFilter,
    LogQuery,
    LogSearch,
    parse_query,
)

__all__ = ["build_router"]

Text = Annotated[str | None, Query()]


class LogPageView(BaseModel):
    items: list[dict[str, Any]]
    #: Pass as ``cursor`` to get the next (older) page; null on the last page.
    next_cursor: str | None


async def log_search(request: Request) -> LogSearch:
    """FastAPI dependency: the app's log search, over the store's own engine."""
    state = request.app.state
    search = getattr(state, "log_search", None)
    if search is None:
        search = state.log_search = LogSearch(admin_context(request).store.engine)
    return cast(LogSearch, search)


def log_filters(
    request_id: Text = None, trace_id: Text = None, consumer: Text = None,
    route: Text = None, service: Text = None, upstream: Text = None,
    error: Annotated[str | None, Query(description="Error class, e.g. `upstream_timeout`.")]
    = None,
    method: Text = None, client_ip: Text = None, ai_model: Text = None,
    ai_provider: Text = None,
    status: Annotated[str | None, Query(description="A code (`404`) or a class (`5xx`).")]
    = None,
    since: Annotated[str | None, Query(description="Inclusive: epoch seconds, ISO 8601 "
                                       "(UTC unless an offset is given) or a duration "
                                       "ago (`15m`, `7d`).")] = None,
    until: Annotated[str | None, Query(description="Exclusive; as `since`.")] = None,
    text: Annotated[str | None, Query(description="Case-insensitive substring of the "
                                      "path, the error class or the user agent.")] = None,
) -> dict[str, str | None]:
    """The search filters shared by the list and the export."""
    return dict(locals())


Filters = Annotated[dict[str, str | None], Depends(log_filters)]
Search = Annotated[LogSearch, Depends(log_search)]


def _query(params: dict[str, str | None], limit_name: str = "limit",
           **limits: int) -> LogQuery:
    try:
        return parse_query(params, time.time(), **limits)
    except InvalidFilter as exc:
        name = limit_name if exc.name == "limit" else exc.name
        raise BadRequest(f"invalid filter {name}: {exc.message}",
                         [{"path": name, "message": exc.message}]) from None


def build_router() -> APIRouter:
    router = APIRouter(prefix="/observe", tags=["observe-logs"],
                       dependencies=[Depends(require_admin)],
                       responses=error_responses(401))

    @router.get("/logs", summary="Search access records, newest first",
                responses=error_responses(400))
    async def search_logs(
        filters: Filters, search: Search,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous "
                                            "page.")] = None,
        limit: Annotated[str | None, Query(description="Records per page, 1-1000 "
                                           "(100).")] = None,
    ) -> LogPageView:
        page = await search.page(_query({**filters, "cursor": cursor, "limit": limit}))
        return LogPageView(items=page.items, next_cursor=page.next_cursor)

    @router.get("/logs.csv", summary="Export access records as CSV",
                description="Every column, newest first, with the same filters as "
                "`/observe/logs`; streamed.  `max_rows` caps it (100,000 by default, "
                "1,000,000 at most).", responses=error_responses(400),
                response_class=StreamingResponse)
    async def export_logs(
        filters: Filters, search: Search,
        max_rows: Annotated[str | None, Query(description="Rows at most.")] = None,
    ) -> StreamingResponse:
        query = _query({**filters, "limit": max_rows}, "max_rows",
                       default_limit=DEFAULT_EXPORT_ROWS,
                       max_limit=MAX_EXPORT_ROWS)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return StreamingResponse(
            search.export_csv(query, query.limit), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition":
                     f'attachment; filename="campusgate-logs-{stamp}.csv"'})

    @router.get("/logs/{request_id}", summary="The access records of one request",
                description="Newest first (a client may send the same id twice).",
                responses=error_responses(404))
    async def request_logs(request_id: str, search: Search) -> list[dict[str, Any]]:
        found = await search.by_request_id(request_id)
        if not found:
            raise NotFound(f"no access record of request {request_id!r} (it may not be "
                           "written yet: records reach the store within about a second)")
        return found

    return router
