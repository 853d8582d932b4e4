"""Helpers of the identity tests (import by name: ``from identity_harness import ...``)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from campusgate.config.identity import IdentityConfig
from campusgate.config.model import Entities
from campusgate.config.sealing import seal
from campusgate.keyring import Keyring

__all__ = ["CALLBACK", "CAMPUSGATE", "IDENTITY", "ISSUER", "LMS_SECRET", "REPORTS_SECRET",
           "SECRETS", "Clock", "Form", "ServedGateway", "authorize_url", "free_port",
           "gateway_config", "html_forms", "identity_config", "pkce", "sealed",
           "serve_gateway", "sign_in"]

ISSUER = "http://localhost:8080"
#: Plaintext secrets of the confidential test clients.
SECRETS = {"lms": "lms-secret-0123456789abcdef", "reports": "reports-secret-0123456789abc"}


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def identity_config(**overrides: Any) -> IdentityConfig:
    """A confidential web app (lms), a public native app (mobile) and a service
    (reports, client_credentials)."""
    data: dict[str, Any] = {
        "issuer": ISSUER,
        "clients": [
            {"client_id": "lms", "name": "District LMS", "client_secret": SECRETS["lms"],
             "redirect_uris": ["https://lms.example.edu/callback"],
             "post_logout_redirect_uris": ["https://lms.example.edu/bye"]},
            {"client_id": "mobile", "name": "Mobile app",
             "token_endpoint_auth_method": "none",
             "redirect_uris": ["http://127.0.0.1/callback", "edu.example.app:/cb"]},
            {"client_id": "reports", "client_secret": SECRETS["reports"],
             "grant_types": ["client_credentials"], "scopes": ["roster.read"],
             "audience": ["https://api.example.edu"], "can_introspect": True},
        ],
        "scopes": [{"name": "roster.read", "description": "Read class rosters"}],
    }
    data.update(overrides)
    return IdentityConfig.model_validate(data)


def sealed(config: IdentityConfig, keyring: Keyring) -> IdentityConfig:
    """``config`` with its client secrets sealed, as the store keeps it."""
    entities = seal(Entities(identity=config), keyring)
    assert entities.identity is not None
    return entities.identity


# ---------------------------------------------------------------- a real gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedGateway:
    """``campusgate serve`` in a subprocess, as an operator runs it."""

    proc: subprocess.Popen[str]
    proxy: str
    admin: str
    token: str
    workdir: Path

    @property
    def issuer(self) -> str:
        return self.proxy

    def admin_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin, timeout=10,
                            headers={"Authorization": f"Bearer {self.token}"})

    def create_user(self, username: str, password: str, **profile: Any) -> dict[str, Any]:
        with self.admin_client() as admin:
            answer = admin.post("/identity/users",
                                json={"username": username, "password": password, **profile})
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def gateway_config(workdir: Path, identity_yaml: str, services_yaml: str = "", *,
                   storage: str | None = None, state: str = "memory"
                   ) -> tuple[Path, str, str]:
    """Write a campusgate.yaml on free ports: (its path, proxy URL, admin URL)."""
    proxy_port, admin_port = free_port(), free_port()
    proxy = f"http://127.0.0.1:{proxy_port}"
    storage = storage or f"sqlite:///{workdir / 'data' / 'cg.db'}"
    config = workdir / "campusgate.yaml"
    config.write_text(
        f"listeners:\n"
        f"  proxy: {{address: 127.0.0.1:{proxy_port}}}\n"
        f"  admin: {{address: 127.0.0.1:{admin_port}}}\n"
        f"storage: {storage}\n"
        f"state: {state}\n"
        f"secret_key_file: {workdir / 'data' / 'secret.key'}\n"
        f"limits: {{shutdown_timeout: 5}}\n"
        + (f"services:\n{services_yaml.replace('{issuer}', proxy)}" if services_yaml else "")
        + f"identity:\n  issuer: {proxy}\n{identity_yaml.replace('{issuer}', proxy)}"
    )
    return config, proxy, f"http://127.0.0.1:{admin_port}"


CAMPUSGATE = str(Path(sys.executable).parent / "campusgate")


def serve_gateway(workdir: Path, identity_yaml: str, services_yaml: str = "",
                  env: dict[str, str] | None = None, *, storage: str | None = None,
                  state: str = "memory", workers: int = 1) -> ServedGateway:
    """Start ``campusgate serve`` on free ports.  ``identity_yaml`` is the body of the
    ``identity:`` section (indented two spaces) and may use ``{issuer}``."""
    config, proxy, admin = gateway_config(workdir, identity_yaml, services_yaml,
                                          storage=storage, state=state)
    proc = subprocess.Popen(
        [CAMPUSGATE, "serve", "-c", str(config), "--workers", str(workers)], cwd=workdir,
        text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING", **(env or {})})
    token = ""
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while not token and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"campusgate exited with {proc.wait()}")
        if line.strip().startswith("cgadm_"):
            token = line.strip()
    threading.Thread(target=_drain, args=(proc,), daemon=True).start()
    gateway = ServedGateway(proc, proxy, admin, token, workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{proxy}/.well-known/openid-configuration").status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    gateway.stop()
    raise AssertionError("the identity provider did not come up")


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        sys.stderr.write(line)


# ---------------------------------------------------------------- HTML forms


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    #: Submit buttons: (name, value, label).
    buttons: list[tuple[str, str, str]] = field(default_factory=list)

    def submit_values(self, choose: str | None = None, **values: str) -> dict[str, str]:
        """The form's fields with ``values`` filled in, plus the button whose label or
        value contains ``choose`` (case-insensitive), if asked."""
        data = {**self.fields, **values}
        if choose is not None:
            for name, value, label in self.buttons:
                if choose.lower() in (label + " " + value).lower():
                    if name:
                        data[name] = value
                    break
            else:
                raise AssertionError(f"no button {choose!r} in {self.buttons}")
        return data


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type") == "submit":
                self.forms[-1].buttons.append((a["name"], a.get("value", ""), ""))
            elif a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("type", "submit") == "submit":
            self._button = [a.get("name", ""), a.get("value", ""), ""]

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[2] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            name, value, label = self._button
            self.forms[-1].buttons.append((name, value, label))
            self._button = None


def html_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


# ---------------------------------------------------------------- a sign-in, as a browser

#: The clients of the end-to-end tests: a web app (``lms``) and a resource server that
#: gets client_credentials tokens (``reports``).  The body of an ``identity:`` section.
LMS_SECRET = "lms-secret-0123456789abcdef"
REPORTS_SECRET = "reports-secret-0123456789abc"
CALLBACK = "https://lms.example.edu/callback"

IDENTITY = f"""\
  clients:
    - client_id: lms
      name: District LMS
      client_secret: {LMS_SECRET}
      redirect_uris: [{CALLBACK}]
      post_logout_redirect_uris: [https://lms.example.edu/bye]
      scopes: [openid, profile, email, offline_access, roster.read]
      audience: [https://api.example.edu]
    - client_id: reports
      client_secret: {REPORTS_SECRET}
      grant_types: [client_credentials]
      scopes: [roster.read]
      audience: [https://api.example.edu]
      can_introspect: true
  scopes:
    - {{name: roster.read, description: Read class rosters}}
"""


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in(browser: httpx.Client, url: str, username: str, password: str,
            consent: str = "allow") -> httpx.URL:
    """Follow ``url`` like a browser: sign in on the login page, answer the consent
    page; returns where the provider finally sends the browser (off the issuer)."""
    issuer_host = browser.base_url.host
    answer = browser.get(url)
    for _ in range(12):
        if answer.is_redirect:
            target = httpx.URL(urljoin(str(answer.url), answer.headers["location"]))
            if target.host != issuer_host or target.port != browser.base_url.port:
                return target
            answer = browser.get(target)
            continue
        assert answer.status_code == 200, answer.text
        forms = [f for f in html_forms(answer.text) if f.method == "post"]
        assert forms, answer.text
        form = forms[0]
        action = urljoin(str(answer.url), form.action or str(answer.url))
        if "password" in form.fields:
            data = form.submit_values(username=username, password=password)
        else:
            data = form.submit_values(choose=consent)
        answer = browser.post(action, data=data)
        assert answer.status_code == 303, (answer.status_code, answer.text)
    raise AssertionError("too many steps")


def authorize_url(issuer: str, challenge: str, state: str, nonce: str,
                  scope: str = "openid profile email offline_access roster.read") -> str:
    query = httpx.QueryParams(response_type="code", client_id="lms", redirect_uri=CALLBACK,
                              scope=scope, state=state, nonce=nonce,
                              code_challenge=challenge, code_challenge_method="S256")
    return f"{issuer}/oauth2/authorize?{query}"
