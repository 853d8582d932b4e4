"""The identity plane: campusgate's OAuth 2.0 authorization server and OpenID provider.

``config/identity.py`` holds its settings and clients; ``directory.py`` its users,
consents, grants and signing keys; ``oauth/`` the grants and endpoints by standard;
``pages/`` the sign-in, consent and sign-out pages; ``runtime.py`` serves it as the
``builtin://identity`` service.  See docs/identity.md.
"""
