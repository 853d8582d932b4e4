"""campusgate: an API and AI gateway with a built-in OAuth 2.0 / OIDC identity provider."""

__all__ = ["__version__"]

__version__ = "0.1.0"
