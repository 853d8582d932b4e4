"""The identity provider's browser pages: login, consent, logout.

Server-rendered HTML (Jinja2, autoescaped, no script, no external asset) with the
same protections on every page (``render.py``: frame and content security policy, no
caching, no referrer) and a CSRF token in every form (``csrf.py``).  A sign-in that
needs the user is a login transaction (``transaction.py``) the pages carry from the
authorization endpoint to the login and consent forms and back.
"""
