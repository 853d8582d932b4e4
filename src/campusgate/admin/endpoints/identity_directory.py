"""The identity directory (users, consents, grants, signing keys) as the admin API
reaches it.

The directory lives in the config store's database.  The admin app opens one the
first time an identity endpoint needs it and keeps it in ``app.state`` for the life
of the app; whoever builds the app may instead put the worker's own directory there
(``app.state.identity_directory``) so that both share one pool.  At shutdown,
:func:`close_identity_directory` closes the one the app opened itself.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request

from campusgate.admin.context import admin_context
from campusgate.admin.errors import ApiError
from campusgate.identity.directory import IdentityDirectory

__all__ = ["Directory", "close_identity_directory", "identity_directory"]


async def identity_directory(request: Request) -> IdentityDirectory:
    """FastAPI dependency: the app's identity directory, opened on first use."""
    state = request.app.state
    existing = getattr(state, "identity_directory", None)
    if existing is not None:
        return cast(IdentityDirectory, existing)
    if getattr(state, "identity_directory_lock", None) is None:
        state.identity_directory_lock = asyncio.Lock()
    async with state.identity_directory_lock:
        if getattr(state, "identity_directory", None) is None:
            store = admin_context(request).store
            if store.keyring is None:
                raise ApiError("this admin API has no secret key, so it cannot read the "
                               "identity directory; see docs/consumers.md")
            dsn = store.url.render_as_string(hide_password=False)
            state.identity_directory = await IdentityDirectory.open(dsn, store.keyring)
            state.identity_directory_opened_here = True
    return cast(IdentityDirectory, state.identity_directory)


async def close_identity_directory(app: FastAPI) -> None:
    """Close the directory :func:`identity_directory` opened, if it did (one put in
    ``app.state`` by the app's builder is the builder's to close)."""
    directory = getattr(app.state, "identity_directory", None)
    if directory is not None and getattr(app.state, "identity_directory_opened_here", False):
        app.state.identity_directory = None
        app.state.identity_directory_opened_here = False
        await cast(IdentityDirectory, directory).close()


Directory = Annotated[IdentityDirectory, Depends(identity_directory)]
