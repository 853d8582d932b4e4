"""``/identity/users``: the identity provider's local accounts and their consents.

Users are data in the identity directory, not configuration: writes here make no
config revision.  ``{user}`` in a path is the user's id or username (or an email that
one user has).  No answer
carries a password or its hash (``has_password`` says whether there is one); a
password the gateway generates is returned once, with ``Cache-Control: no-store``.

Revoking a consent or deleting a user stops their refresh tokens at once; access
tokens already issued run until they expire (the client's ``access_token_lifetime``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from campusgate.admin.auth import require_admin
from campusgate.admin.endpoints.identity_directory import Directory
from campusgate.admin.errors import Conflict, NotFound
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.common import StrictModel
from campusgate.identity.claims import PROTOCOL_CLAIMS
from campusgate.identity.directory import IdentityDirectory, UserExists
from campusgate.identity.models import Consent, User

__all__ = [
    "ConsentView",
    "PasswordChange",
    "PasswordSet",
    "UserCreate",
    "UserCreated",
    "UserPage",
    "UserUpdate",
    "UserView",
    "build_router",
    "generate_password",
]

#: No whitespace, control characters or ``/`` (a username is a path segment here).
USERNAME_PATTERN = r"^[^\s/\x00-\x1f\x7f]{1,200}$"
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
#: Claims stored in a field of their own, or derived from one (``identity/claims.py``).
_FIELD_CLAIMS = frozenset({"name", "given_name", "family_name", "email", "email_verified",
                           "preferred_username", "updated_at"})
_NO_STORE = {"Cache-Control": "no-store"}

Username = Annotated[str, Field(pattern=USERNAME_PATTERN)]
Password = Annotated[str, Field(min_length=8, max_length=1024)]
Email = Annotated[str, Field(pattern=_EMAIL_PATTERN, max_length=320)]
Text = Annotated[str, Field(max_length=200)]


def generate_password() -> str:
    """A password for the user to change: 128 random bits, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


def _check_claims(claims: dict[str, Any] | None) -> dict[str, Any] | None:
    bad = sorted(set(claims or ()) & (PROTOCOL_CLAIMS | _FIELD_CLAIMS))
    if bad:
        raise ValueError(f"claim(s) {', '.join(bad)} cannot be set here: protocol claims "
                         "are set by the provider, and name/email claims have fields of "
                         "their own")
    return claims


class UserView(BaseModel):
    """A user; never their password or its hash."""

    id: str
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    given_name: str | None
    family_name: str | None
    claims: dict[str, Any]
    disabled: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(id=user.id, username=user.username, email=user.email,
                   email_verified=user.email_verified, name=user.name,
                   given_name=user.given_name, family_name=user.family_name,
                   claims=user.claims, disabled=user.disabled,
                   has_password=user.password_hash is not None,
                   created_at=user.created_at, updated_at=user.updated_at)


class UserPage(Page[UserView]):
    """One page of users; ``next_offset`` is where the next page starts (None: last)."""

    next_offset: int | None = None


class UserCreate(StrictModel):
    username: Username
    password: Password | None = None
    #: Generate a password and return it (this once) in the answer.
    generate_password: bool = False
    email: Email | None = None
    email_verified: bool = False
    name: Text | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    claims: dict[str, Any] = Field(default_factory=dict)

    _claims = field_validator("claims")(_check_claims)

    @model_validator(mode="after")
    def _one_password(self) -> UserCreate:
        if self.password is not None and self.generate_password:
            raise ValueError("give password or generate_password, not both")
        return self


class UserUpdate(StrictModel):
    """Profile fields to change (``password`` has its own endpoint)."""

    username: Username | None = None
    email: Email | None = None
    email_verified: bool | None = None
    name: Text | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    claims: dict[str, Any] | None = None
    #: A disabled user cannot sign in (nor use their tokens at userinfo or refresh).
    disabled: bool | None = None

    _claims = field_validator("claims")(_check_claims)

    @model_validator(mode="after")
    def _required_stay_set(self) -> UserUpdate:
        for name in ("username", "email_verified", "disabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PasswordChange(StrictModel):
    password: Password | None = None
    generate_password: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> PasswordChange:
        if (self.password is None) == (not self.generate_password):
            raise ValueError("give password, or generate_password: true")
        return self


class UserCreated(BaseModel):
    """A new user; a password the gateway generated comes with it, this once."""

    user: UserView
    password: str | None = None


class PasswordSet(BaseModel):
    """The user's password was replaced; a generated one is shown this once."""

    user: UserView
    password: str | None = None


class ConsentView(BaseModel):
    client_id: str
    scopes: list[str]
    granted_at: datetime

    @classmethod
    def of(cls, consent: Consent) -> ConsentView:
        return cls(client_id=consent.client_id, scopes=sorted(consent.scopes),
                   granted_at=consent.granted_at)


async def find_user(directory: IdentityDirectory, user: str) -> User:
    """The user with id ``user``, else with that username (or that email, when one
    user has it); 404 when there is none."""
    found = await directory.get_user(user) or await directory.find_user(user)
    if found is None:
        raise NotFound(f"no user {user!r}")
    return found


def _secret_answer(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code,
                        headers=_NO_STORE)


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/identity/users",
        tags=["identity"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List users (by username)")
    async def list_users(
        directory: Directory,
        search: Annotated[str | None, Query(
            max_length=200, description="part of the username, email or name")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> UserPage:
        users = await directory.list_users(offset=offset, limit=limit + 1, search=search)
        more = len(users) > limit
        return UserPage(data=[UserView.of(u) for u in users[:limit]],
                        next_offset=offset + limit if more else None)

    @router.post(
        "",
        summary="Create a user",
        description="Without a password the user cannot sign in until one is set. With "
        "`generate_password: true` the gateway makes one and returns it in this answer "
        "only.",
        status_code=status.HTTP_201_CREATED,
        response_model=UserCreated,
        responses=error_responses(409, 422),
    )
    async def create_user(body: UserCreate, directory: Directory) -> JSONResponse:
        password = generate_password() if body.generate_password else body.password
        try:
            user = await directory.create_user(
                body.username, password, email=body.email, email_verified=body.email_verified,
                name=body.name, given_name=body.given_name, family_name=body.family_name,
                claims=body.claims)
        except UserExists as exc:
            raise Conflict(str(exc)) from None
        created = UserCreated(user=UserView.of(user),
                              password=password if body.generate_password else None)
        return _secret_answer(created, status.HTTP_201_CREATED)

    @router.get("/{user}", summary="Get a user", responses=error_responses(404))
    async def get_user(user: str, directory: Directory) -> UserView:
        return UserView.of(await find_user(directory, user))

    @router.patch(
        "/{user}",
        summary="Change a user's profile, or disable them",
        description="Only the fields given change; `claims` replaces all extra claims. "
        "`disabled: true` stops sign-in, userinfo and token refresh for the user.",
        responses=error_responses(404, 409, 422),
    )
    async def patch_user(user: str, body: UserUpdate, directory: Directory) -> UserView:
        found = await find_user(directory, user)
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        if not changes:
            return UserView.of(found)
        try:
            updated = await directory.update_user(found.id, **changes)
        except UserExists as exc:
            raise Conflict(str(exc)) from None
        if updated is None:
            raise NotFound(f"no user {user!r}")
        return UserView.of(updated)

    @router.put(
        "/{user}/password",
        summary="Set a user's password",
        description="`{\"password\": \"...\"}` sets it; `{\"generate_password\": true}` "
        "makes one and returns it in this answer only.",
        response_model=PasswordSet,
        responses=error_responses(404, 422),
    )
    async def set_password(user: str, body: PasswordChange, directory: Directory
                           ) -> JSONResponse:
        found = await find_user(directory, user)
        password = generate_password() if body.generate_password else body.password
        assert password is not None
        if not await directory.set_password(found.id, password):
            raise NotFound(f"no user {user!r}")
        updated = await find_user(directory, found.id)
        answer = PasswordSet(user=UserView.of(updated),
                             password=password if body.generate_password else None)
        return _secret_answer(answer)

    @router.delete(
        "/{user}",
        summary="Delete a user",
        description="Their consents go, and their refresh tokens stop working.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_user(user: str, directory: Directory) -> Response:
        found = await find_user(directory, user)
        if not await directory.delete_user(found.id):
            raise NotFound(f"no user {user!r}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    _consent_routes(router)
    return router


def _consent_routes(router: APIRouter) -> None:
    @router.get("/{user}/consents", summary="List the clients a user consented to",
                responses=error_responses(404))
    async def list_consents(user: str, directory: Directory) -> Page[ConsentView]:
        found = await find_user(directory, user)
        consents = await directory.list_consents(user_id=found.id)
        return Page[ConsentView](data=[ConsentView.of(c) for c in consents])

    @router.delete(
        "/{user}/consents/{client_id}",
        summary="Revoke a user's consent to a client",
        description="The client must ask again, and the refresh tokens it holds for the "
        "user stop working at once.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def revoke_consent(user: str, client_id: str, directory: Directory) -> Response:
        found = await find_user(directory, user)
        if not await directory.revoke_consent(found.id, client_id):
            raise NotFound(f"user {found.username!r} has no consent for client {client_id!r}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

