"""``/identity/keys``: the identity provider's signing keys, and their rotation.

Keys are generated on first start and kept encrypted in the directory
(``identity/keys.py``).  Listing them shows no key material, public or private (the
public keys are at the provider's JWKS endpoint).  Rotation makes a new key for each
algorithm; the old ones stop signing and stay in the JWKS for ``overlap`` seconds, by
default the longest token lifetime of any client, so that every token they signed
still verifies until it expires.  Workers pick up the new keys within seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from campusgate.admin.auth import require_admin
from campusgate.admin.context import AdminContext, admin_context
from campusgate.admin.endpoints.identity_directory import Directory
from campusgate.admin.endpoints.identity_settings import require_identity
from campusgate.admin.schemas import Page, error_responses
from campusgate.identity.keys import KeyManager
from campusgate.identity.models import SigningKey

__all__ = ["KeyRotation", "KeyView", "build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]

#: Longest overlap accepted: no token lives longer than a day (config/identity.py).
MAX_OVERLAP = 7 * 86400


class KeyView(BaseModel):
    """A signing key's identity and dates (epoch seconds); no key material."""

    kid: str
    alg: str
    state: Literal["active", "retired"] = Field(
        description="active keys sign; retired ones are only published until expires_at")
    created_at: int
    retired_at: int | None
    expires_at: int | None

    @classmethod
    def of(cls, key: SigningKey) -> KeyView:
        return cls(kid=key.kid, alg=key.alg,
                   state="active" if key.retired_at is None else "retired",
                   created_at=key.created_at, retired_at=key.retired_at,
                   expires_at=key.expires_at)


class KeyRotation(BaseModel):
    """The new keys, and how long the ones they replace stay published."""

    kids: list[str]
    retired: list[str]
    overlap: int


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/identity/keys",
        tags=["identity"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List signing keys (no key material)")
    async def list_keys(directory: Directory) -> Page[KeyView]:
        return Page[KeyView](data=[KeyView.of(k) for k in await directory.signing_keys()])

    @router.post(
        "/rotate",
        summary="Rotate the signing keys",
        description="A new key for each algorithm signs from now on. The old keys stay "
        "in the JWKS for `overlap` seconds (default: the longest access or ID token "
        "lifetime of any client). `overlap=0` unpublishes them at once, after a key "
        "leak: every token they signed stops verifying.",
        responses=error_responses(409, 422),
    )
    async def rotate_keys(
        context: Context,
        directory: Directory,
        overlap: Annotated[int | None, Query(ge=0, le=MAX_OVERLAP)] = None,
    ) -> KeyRotation:
        _, entities = await context.store.latest()
        config = require_identity(entities)
        seconds = config.max_token_lifetime() if overlap is None else overlap
        before = {k.kid for k in await directory.signing_keys() if k.retired_at is None}
        kids = await KeyManager(directory).rotate(seconds)
        await context.runtime.signing_keys_changed()
        return KeyRotation(kids=kids, retired=sorted(before), overlap=seconds)

    return router
