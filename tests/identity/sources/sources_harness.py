"""Helpers of the login-source tests (import by name): the gateway's ``identity:``
section, and a browser that follows redirects across the gateway and the stand-in,
clicks a source's button and answers consent."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
from classlink_standin import CLIENT_ID, CLIENT_SECRET
from identity_harness import html_forms

__all__ = ["APP_CALLBACK", "APP_LAUNCH", "APP_SECRET", "Stop", "browse", "identity_yaml",
           "source_buttons"]

APP_SECRET = "quiz-app-secret-0123456789abcdef"
APP_CALLBACK = "https://quiz.example.edu/callback"
APP_LAUNCH = "https://quiz.example.edu/launch"


def identity_yaml(standin: str) -> str:
    """The ``identity:`` body: an app that wants roster claims, and two sources."""
    return f"""\
  clients:
    - client_id: quiz
      name: Quiz App
      client_secret: {APP_SECRET}
      redirect_uris: [{APP_CALLBACK}]
      initiate_login_uri: {APP_LAUNCH}
      scopes: [openid, profile, email, offline_access, roster]
  sources:
    - type: classlink
      client_id: {CLIENT_ID}
      client_secret: ${{CLASSLINK_SECRET}}
      launchpad_url: {standin}
      api_url: {standin}
      timeout: 1
    - type: oidc
      name: district
      label: Springfield Schools
      issuer: {standin}
      client_id: {CLIENT_ID}
      client_secret: {CLIENT_SECRET}
      email_domains: [springfield.k12.us]
"""

_BUTTON = re.compile(r'<a class="button source" href="([^"]+)">([^<]+)</a>')


def source_buttons(html: str) -> dict[str, str]:
    """The login page's source buttons: label -> link."""
    return {label: href.replace("&amp;", "&") for href, label in _BUTTON.findall(html)}


class Stop(Exception):
    """The browser ended on a page (not a redirect off the servers)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} at {response.url}")
        self.response = response


def browse(browser: httpx.Client, url: str, *, button: str = "Sign in with ClassLink",
           hosts: tuple[str, ...] = ("127.0.0.1",),
           password: tuple[str, str] | None = None) -> httpx.URL:
    """Follow ``url``: click ``button`` on a login page (or sign in with ``password``,
    a username and password, where there is no such button), allow on a consent page;
    return the first redirect that leaves ``hosts`` (the app's callback).  A page that
    is neither raises :class:`Stop` with it."""
    answer = browser.get(url)
    for _ in range(20):
        if answer.is_redirect:
            target = httpx.URL(urljoin(str(answer.url), answer.headers["location"]))
            if target.host not in hosts:
                return target
            answer = browser.get(target)
            continue
        if answer.status_code != 200:
            raise Stop(answer)
        buttons = source_buttons(answer.text)
        if button in buttons:
            answer = browser.get(urljoin(str(answer.url), buttons[button]))
            continue
        forms = [f for f in html_forms(answer.text) if f.method == "post"
                 and (password is not None or "password" not in f.fields)]
        if not forms:
            raise Stop(answer)
        form = forms[0]
        if "password" in form.fields and password is not None:
            data = form.submit_values(username=password[0], password=password[1])
        else:
            data = form.submit_values(choose="allow")
        answer = browser.post(urljoin(str(answer.url), form.action or str(answer.url)),
                              data=data)
    raise AssertionError("too many steps")
