"""campusgate's OAuth 2.0 authorization server, on Authlib.

Cut by standard, as Authlib is: ``server.py`` (the Authlib integration),
``clients.py`` (RFC 6749 2), ``client_auth.py`` (RFC 6749 2.3, RFC 7523),
``grants/`` (RFC 6749 4.1 with RFC 7636, 4.4, 6), ``authorization.py`` and
``token_endpoint.py`` (RFC 6749 3.1, 3.2), ``revocation.py`` (RFC 7009),
``introspection.py`` (RFC 7662), ``userinfo.py`` (OIDC Core 5.3), ``errors.py``.
RFC 9700 (the OAuth 2.0 Security Best Current Practice) sets the policy throughout.
"""
