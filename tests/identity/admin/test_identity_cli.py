"""``campusgate identity ...`` against the admin API served on a real 127.0.0.1 port
(the CLI runs on a thread: it is synchronous, the server lives on the test's loop)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from identity_admin_harness import ISSUER, serving
from typer.testing import CliRunner, Result

from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.keys import KeyManager
from campusgate.identity_cli import identity_app
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


@dataclass
class Cli:
    url: str
    token: str
    runner: CliRunner

    async def __call__(self, *args: str, input: str | None = None,
                       token: str | None = None) -> Result:
        argv = [*args, "--admin-url", self.url, "--token", token or self.token]
        return await asyncio.to_thread(self.runner.invoke, identity_app, argv, input=input)


@pytest.fixture
async def cli(admin_app: FastAPI, token: str) -> AsyncIterator[Cli]:
    async with serving(admin_app) as url:
        yield Cli(url, token, CliRunner())


@pytest.fixture
async def configured(store: ConfigStore, cli: Cli) -> Cli:
    from campusgate.config.identity import IdentityConfig
    from campusgate.config.model import Entities

    await store.save(Entities(identity=IdentityConfig(issuer=ISSUER)), "test")
    return cli


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def failed(result: Result) -> str:
    """The error message of a command that must fail cleanly."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    return result.stderr


async def test_create_client_prints_the_secret_once(
        configured: Cli, store: ConfigStore, keyring: Keyring) -> None:
    result = ok(await configured(
        "create-client", "lms", "--redirect-uri", "https://lms.example.edu/cb",
        "--redirect-uri", "https://lms.example.edu/cb2", "--name", "District LMS",
        "--scope", "openid", "--scope", "email"))
    lines = result.stdout.splitlines()
    assert lines[0] == "client_id: lms"
    secret = re.fullmatch(r"client_secret: (cgs_\S+)", lines[1])
    assert secret is not None
    assert "shown only this once" in result.stderr

    _, entities = await store.latest()
    assert entities.identity is not None
    stored = entities.identity.clients[0]
    assert stored.client_secret_hash == keyring.hash_key(secret.group(1))
    assert stored.redirect_uris == ["https://lms.example.edu/cb", "https://lms.example.edu/cb2"]
    assert stored.scopes == ["openid", "email"] and stored.name == "District LMS"

    listed = ok(await configured("list-clients")).stdout
    assert "lms" in listed and "confidential" in listed and "District LMS" in listed
    assert secret.group(1) not in listed


async def test_public_and_service_clients(configured: Cli) -> None:
    public = ok(await configured("create-client", "mobile", "--public",
                                 "--redirect-uri", "http://127.0.0.1/callback"))
    assert public.stdout == "client_id: mobile\n"
    assert "PKCE" in public.stderr
    service = ok(await configured("create-client", "reports", "--grant",
                                  "client_credentials", "--scope", "openid"))
    assert "client_secret: cgs_" in service.stdout
    rows = ok(await configured("list-clients")).stdout.splitlines()
    assert rows[0].split() == ["CLIENT_ID", "TYPE", "GRANTS", "NAME", "REDIRECT_URIS"]
    assert rows[1].split()[:3] == ["mobile", "public", "authorization_code,refresh_token"]
    assert rows[2].split()[:3] == ["reports", "confidential", "client_credentials"]


async def test_rotate_secret(configured: Cli, store: ConfigStore, keyring: Keyring) -> None:
    first = ok(await configured("create-client", "lms", "--redirect-uri",
                                "https://lms.example.edu/cb")).stdout.split()[-1]
    result = ok(await configured("rotate-secret", "lms"))
    new = result.stdout.strip().removeprefix("client_secret: ")
    assert new.startswith("cgs_") and new != first
    assert "no longer works" in result.stderr
    _, entities = await store.latest()
    assert entities.identity is not None
    assert entities.identity.clients[0].client_secret_hash == keyring.hash_key(new)


async def test_client_errors_are_one_message(cli: Cli, configured: Cli) -> None:
    await configured("create-client", "lms", "--redirect-uri", "https://lms.example.edu/cb")
    again = failed(await cli("create-client", "lms", "--redirect-uri",
                             "https://lms.example.edu/cb"))
    assert again == "error: an identity client 'lms' already exists (conflict)\n"
    insecure = failed(await cli("create-client", "web", "--redirect-uri",
                                "http://web.example.edu/cb"))
    assert insecure.startswith("error: invalid value at redirect_uris")
    assert "error: no identity client 'nobody'" in failed(await cli("rotate-secret", "nobody"))
    assert "--token" in failed(await cli("list-clients", token="cgadm_wrong"))


async def test_client_needs_the_provider_configured(cli: Cli) -> None:
    message = failed(await cli("create-client", "lms", "--redirect-uri",
                               "https://lms.example.edu/cb"))
    assert "set identity.issuer first" in message


async def test_create_users_and_list_them(cli: Cli, directory: IdentityDirectory) -> None:
    piped = ok(await cli("create-user", "Ada", "--email", "ada@example.edu",
                         "--name", "Ada Lovelace", "--password-stdin",
                         input="correct horse battery\n"))
    assert re.fullmatch(r"user ada id [0-9a-f-]{36}\n", piped.stdout)
    user = await directory.find_user("ada")
    assert user is not None and user.name == "Ada Lovelace"
    assert await directory.verify_password(user, "correct horse battery")

    generated = ok(await cli("create-user", "bob", "--generate-password"))
    password = generated.stdout.splitlines()[1].removeprefix("password: ")
    assert "shown only this once" in generated.stderr
    bob = await directory.find_user("bob")
    assert bob is not None and await directory.verify_password(bob, password)

    rows = ok(await cli("list-users")).stdout.splitlines()
    assert [row.split()[0] for row in rows] == ["USERNAME", "ada", "bob"]
    assert "ada@example.edu" in rows[1] and "active" in rows[1]
    searched = ok(await cli("list-users", "--search", "lovelace")).stdout.splitlines()
    assert [row.split()[0] for row in searched] == ["USERNAME", "ada"]
    assert "no users" in ok(await cli("list-users", "--search", "zed")).stderr


async def test_user_errors(cli: Cli) -> None:
    both = failed(await cli("create-user", "ada", "--password-stdin", "--generate-password",
                            input="pw\n"))
    assert both == "give --password-stdin or --generate-password, not both\n"
    assert failed(await cli("create-user", "ada", "--password-stdin", input="\n")) == (
        "no password on stdin\n")
    short = failed(await cli("create-user", "ada", "--password-stdin", input="short\n"))
    assert short.startswith("error: invalid value at password")
    ok(await cli("create-user", "ada"))
    assert "already exists" in failed(await cli("create-user", "ADA"))


async def test_revoke_consent(cli: Cli, directory: IdentityDirectory) -> None:
    user = await directory.create_user("ada")
    await directory.save_consent(user.id, "lms", ["openid"])
    result = ok(await cli("revoke-consent", "ada", "lms"))
    assert result.stdout == "revoked ada's consent to lms\n"
    assert await directory.list_consents(user_id=user.id) == []
    again = failed(await cli("revoke-consent", "ada", "lms"))
    assert again == "error: user 'ada' has no consent for client 'lms' (not_found)\n"
    assert "no user 'zed'" in failed(await cli("revoke-consent", "zed", "lms"))


async def test_rotate_keys(configured: Cli, directory: IdentityDirectory) -> None:
    keys = KeyManager(directory)
    await keys.ensure()
    old = {k["kid"] for k in keys.jwks()["keys"]}
    result = ok(await configured("rotate-keys"))
    new = [line.removeprefix("new key ") for line in result.stdout.splitlines()]
    assert len(new) == 2 and not set(new) & old
    assert "2 old key(s) stay published for 3600 s" in result.stderr
    short = ok(await configured("rotate-keys", "--overlap", "60"))
    assert "stay published for 60 s" in short.stderr


async def test_admin_url_and_token_from_the_environment(configured: Cli) -> None:
    env = {"CAMPUSGATE_ADMIN_URL": configured.url, "CAMPUSGATE_ADMIN_TOKEN": configured.token}
    result = await asyncio.to_thread(configured.runner.invoke, identity_app,
                                     ["list-clients"], env=env)
    assert ok(result).stderr == "no clients\n"


async def test_unreachable_admin_api(runner_url: str) -> None:
    runner = CliRunner()
    for argv in (["list-clients"], ["revoke-consent", "ada", "lms"]):
        result = await asyncio.to_thread(runner.invoke, identity_app,
                                         [*argv, "--admin-url", runner_url])
        assert failed(result).startswith(f"cannot connect to the admin API at {runner_url}")


@pytest.fixture
def runner_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
