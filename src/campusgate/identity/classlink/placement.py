"""Where the caller is at school: their roster record, district and school.

Read through the roster read API (``identity/roster/store.py``): the person whose
``account_id`` is the caller's account, their tenant, the tenant's district org and
their first school (the first of their orgs of type ``school``, in the order the
roster lists them).  A local account with no roster record has none of these; the
answers then come from the account's own fields and ``roster`` claims.
"""

from __future__ import annotations

from campusgate.identity.classlink.shapes import Placement
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.roster.models import Org, Person

__all__ = ["placement"]


async def _school(ctx: IdentityContext, person: Person) -> Org | None:
    for sourced_id in person.org_sourced_ids:
        org = await ctx.roster.org(person.tenant_id, sourced_id)
        if org is not None and org.type == "school" and org.status == "active":
            return org
    return None


async def placement(ctx: IdentityContext, user: User) -> Placement:
    """The :class:`Placement` of ``user`` (empty when they are not rostered)."""
    roster = ctx.roster
    person = await roster.person_for_account(user.id)
    if person is None:
        return Placement()
    tenant = await roster.tenant(person.tenant_id)
    return Placement(person=person, tenant_name=tenant.name if tenant else None,
                     district=await roster.district(person.tenant_id),
                     school=await _school(ctx, person))
