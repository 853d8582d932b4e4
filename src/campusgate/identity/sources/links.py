"""Which local account a person from a login source is: links, and accounts made
just in time.

``identity_user_links`` maps (source name, subject) to a local account.  On each
sign-in through a source (:func:`account_for`):

1. a link exists: that account (refused when disabled);
2. no link, but a local account has the same email, verified on both sides (the
   source says so, and the operator marked the local address verified): that account
   is linked -- unless it is already linked to another person of the same source;
3. otherwise, with ``provision: auto``, a new account is made (no password; the
   username is the source's login name, with the district or source added when that
   is taken -- an existing account is never taken over by a name); with
   ``link-only`` the sign-in is refused.

Then the account's name, email and roster claims are refreshed from the source and
the link's ``last_login_at`` is set.  An unverified email never links anything.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.config.identity_sources import LoginSource
from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory, UserExists
from campusgate.identity.directory_rows import now as db_now
from campusgate.identity.models import User
from campusgate.identity.sources.errors import account_refused
from campusgate.identity.sources.profile import Profile
from campusgate.store.engine import writer
from campusgate.store.tables import identity_user_links, identity_users

__all__ = ["UserLinks", "account_for"]

_links = identity_user_links.c
_users = identity_users.c


@dataclass(frozen=True)
class UserLinks:
    """The link table, over the directory's database."""

    engine: AsyncEngine
    writer: AsyncEngine

    @classmethod
    def of(cls, directory: IdentityDirectory) -> UserLinks:
        """On the directory's engine: links are rows of the same database."""
        return cls(directory.engine, writer(directory.engine))

    async def find(self, source: str, subject: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(_links.user_id).where(
                and_(_links.source == source, _links.subject == subject)))).scalar()

    async def add(self, source: str, subject: str, user_id: str) -> bool:
        """Link; False when (source, subject) is linked already (a racing sign-in)."""
        stamp = db_now()
        try:
            async with self.writer.begin() as conn:
                await conn.execute(insert(identity_user_links).values(
                    source=source, subject=subject, user_id=user_id, created_at=stamp,
                    last_login_at=stamp))
        except IntegrityError:
            return False
        return True

    async def remove(self, source: str, subject: str) -> None:
        async with self.writer.begin() as conn:
            await conn.execute(delete(identity_user_links).where(
                and_(_links.source == source, _links.subject == subject)))

    async def touch(self, source: str, subject: str) -> None:
        async with self.writer.begin() as conn:
            await conn.execute(update(identity_user_links).where(
                and_(_links.source == source, _links.subject == subject)
            ).values(last_login_at=db_now()))

    async def linked_to_source(self, source: str, user_id: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(_links.subject).where(
                and_(_links.source == source, _links.user_id == user_id)).limit(1))
            ).first() is not None

    async def verified_email_owner(self, email: str) -> str | None:
        """The one account whose verified email is ``email`` (None: none, or several)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_users.id).where(and_(
                _users.email == email.strip().lower(), _users.email_verified.is_(True)
            )).limit(2))).all()
        return str(rows[0][0]) if len(rows) == 1 else None



async def account_for(ctx: IdentityContext, source: LoginSource, profile: Profile) -> User:
    """The local account ``profile`` signs in as (see the module docstring), refreshed;
    SourceError when there is none it may use."""
    links = UserLinks.of(ctx.directory)
    user = await _linked(ctx, links, source, profile)
    if user is None:
        user = await _match_email(ctx, links, source, profile)
    if user is None:
        if source.provision != "auto":
            raise account_refused(
                source.name, source.button, f"no account linked to {profile.subject} and "
                "provision is link-only",
                f"Your {source.button} account is not connected to an account here. Ask "
                "your school's IT team to set one up for you.")
        user = await _create(ctx, profile)
        if not await links.add(source.name, profile.subject, user.id):
            await ctx.directory.delete_user(user.id)  # lost a race: use the winner's
            user = await _linked(ctx, links, source, profile)
            if user is None:
                raise account_refused(source.name, source.button, "link race lost",
                                      "Please try signing in again.")
    if user.disabled:
        raise account_refused(source.name, source.button,
                              f"account {user.id} is disabled",
                              "Your account here is disabled. Ask your school's IT team.")
    await links.touch(source.name, profile.subject)
    return await _refresh(ctx, user, profile)


async def _linked(ctx: IdentityContext, links: UserLinks, source: LoginSource,
                  profile: Profile) -> User | None:
    user_id = await links.find(source.name, profile.subject)
    if user_id is None:
        return None
    user = await ctx.directory.get_user(user_id)
    if user is None:  # the account was deleted: the link is stale
        await links.remove(source.name, profile.subject)
    return user


async def _match_email(ctx: IdentityContext, links: UserLinks, source: LoginSource,
                       profile: Profile) -> User | None:
    if not (profile.email and profile.email_verified):
        return None
    owner = await links.verified_email_owner(profile.email)
    if owner is None or await links.linked_to_source(source.name, owner):
        return None
    if not await links.add(source.name, profile.subject, owner):
        return await _linked(ctx, links, source, profile)
    return await ctx.directory.get_user(owner)


async def _create(ctx: IdentityContext, profile: Profile) -> User:
    base = profile.username.strip().lower()[:200] or "user"
    for candidate in (base, base + profile.suffix.lower(),
                      f"{base}{profile.suffix.lower()}-{secrets.token_hex(3)}"):
        try:
            return await ctx.directory.create_user(
                candidate, email=profile.email, email_verified=profile.email_verified,
                name=profile.name, given_name=profile.given_name,
                family_name=profile.family_name, claims=profile.roster)
        except UserExists:
            continue
    raise UserExists(base)


async def _refresh(ctx: IdentityContext, user: User, profile: Profile) -> User:
    kept = {name: value for name, value in user.claims.items()
            if name not in profile.replaces}
    changes: dict[str, Any] = {"claims": {**kept, **profile.roster}}
    for name in ("name", "given_name", "family_name"):
        value = getattr(profile, name)
        if value is not None:
            changes[name] = value
    if profile.email is not None:
        changes["email"] = profile.email
        changes["email_verified"] = profile.email_verified
    return await ctx.directory.update_user(user.id, **changes) or user
