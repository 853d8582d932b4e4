"""The roster from an operator's seat: ``campusgate identity seed-demo`` and
``campusgate identity roster import|tenants|delete-tenant`` against a real
``campusgate serve``, the admin API's roster views, and a demo teacher signing in to
an app that gets their roster claims."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import ServedGateway, pkce, serve_gateway, sign_in
from roster_bundles import BUNDLE_11, edited, zip_bundle
from typer.testing import CliRunner, Result

from campusgate.cli import app

SECRET = "roster-app-secret-0123456789"
CALLBACK = "https://app.example.edu/callback"
IDENTITY = f"""\
  clients:
    - client_id: app
      client_secret: {SECRET}
      redirect_uris: [{CALLBACK}]
      scopes: [openid, profile, email, roster]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    served = serve_gateway(tmp_path_factory.mktemp("roster"), IDENTITY)
    yield served
    assert served.stop() == 0


def run(gateway: ServedGateway, *args: str) -> Result:
    argv = ["identity", *args, "--admin-url", gateway.admin, "--token", gateway.token]
    return CliRunner().invoke(app, argv, env={"CAMPUSGATE_ADMIN_TOKEN": None})


def test_seed_demo_creates_a_district_whose_people_can_sign_in(
        gateway: ServedGateway) -> None:
    result = run(gateway, "seed-demo", "--tenant", "maple", "--password",
                 "demo-password-1")
    assert result.exit_code == 0, result.output
    assert "demo district in tenant maple: 4 orgs" in result.stdout
    assert "40 student(s)" in result.stdout and "6 teacher(s)" in result.stdout
    assert "demo-password-1" not in result.stdout  # a given password is not echoed

    again = run(gateway, "seed-demo", "--tenant", "maple")
    assert again.exit_code == 1 and "already exists" in again.stderr

    verifier, challenge = pkce()
    query = httpx.QueryParams(response_type="code", client_id="app",
                              redirect_uri=CALLBACK, scope="openid profile roster",
                              state=secrets.token_urlsafe(8), code_challenge=challenge,
                              code_challenge_method="S256")
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = sign_in(browser, f"{gateway.issuer}/oauth2/authorize?{query}",
                          "grace.hopper.maple", "demo-password-1")
    code = parse_qs(urlsplit(str(landing)).query)["code"][0]
    tokens = httpx.post(f"{gateway.issuer}/oauth2/token", auth=("app", SECRET), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "code_verifier": verifier}).json()
    info = httpx.get(f"{gateway.issuer}/oauth2/userinfo",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["role"] == "teacher"
    assert info["district"] == "Maple Valley School District"
    assert info["school_ids"] == ["mv-es"]
    assert info["class_ids"] == ["k-math3", "k-read3"]


def test_seed_demo_prints_a_generated_password_once(gateway: ServedGateway) -> None:
    result = run(gateway, "seed-demo", "--tenant", "maple-2")
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("password")]
    assert len(line.split(": ", 1)[1]) >= 16
    assert "shown only this once" in result.stderr


def test_import_shows_progress_and_counts(gateway: ServedGateway, tmp_path: Path) -> None:
    bundle = tmp_path / "lakeside.zip"
    bundle.write_bytes(zip_bundle(dict(BUNDLE_11)))
    result = run(gateway, "roster", "import", str(bundle), "--tenant", "lakeside")
    assert result.exit_code == 0, result.output
    assert "imported into tenant lakeside" in result.stdout
    assert "created: 3 orgs, 2 academicSessions, 2 courses, 2 classes, 4 users, " \
           "3 enrollments" in result.stdout
    assert "accounts: 4 created" in result.stdout
    assert "users             [##############################] 4/4" in result.stderr

    listed = run(gateway, "roster", "tenants")
    assert listed.exit_code == 0
    assert any(line.split()[1] == "lakeside" and "4 users" in line
               for line in listed.stdout.splitlines())

    with httpx.Client(base_url=gateway.admin,
                      headers={"Authorization": f"Bearer {gateway.token}"}) as admin:
        people = admin.get("/identity/roster/tenants/lakeside/people",
                           params={"limit": 3}).json()
        assert [p["sourced_id"] for p in people["data"]] == ["u1", "u2", "u3"]
        assert people["next_offset"] == 3
        assert "password" not in people["data"][0]
        classes = admin.get("/identity/roster/tenants/lakeside/classes").json()
        assert [c["title"] for c in classes["data"]] == ["Algebra I - P1", "Science 7 - P2"]
        assert admin.get("/identity/roster/tenants/nowhere/orgs").status_code == 404
        assert admin.get("/identity/roster/tenants/lakeside/grades").status_code == 404


def test_a_broken_bundle_lists_its_bad_rows_and_changes_nothing(
        gateway: ServedGateway, tmp_path: Path) -> None:
    files = edited(dict(BUNDLE_11), "users.csv", "student,kim.park", "pupil,kim.park")
    files = edited(files, "orgs.csv", "Lakeside Middle", "Renamed")
    bundle = tmp_path / "broken.zip"
    bundle.write_bytes(zip_bundle(files))
    result = run(gateway, "roster", "import", str(bundle), "--tenant", "broken")
    assert result.exit_code == 1
    assert "users.csv:4: role: 'pupil' is not one of" in result.stderr
    assert "Traceback" not in result.output
    with httpx.Client(base_url=gateway.admin,
                      headers={"Authorization": f"Bearer {gateway.token}"}) as admin:
        tenants = admin.get("/identity/roster/tenants").json()["data"]
        assert "broken" not in [t["name"] for t in tenants]
        refused = admin.post("/identity/roster/tenants/broken/import", content=b"not a zip",
                             headers={"Content-Type": "application/zip"})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"] == [
            {"path": "bundle:0", "message": "not a zip file"}]


def test_an_import_refused_at_the_accounts_step_says_which_row(
        gateway: ServedGateway, tmp_path: Path) -> None:
    gateway.create_user("clash.user", "local-password-1")
    files = dict(BUNDLE_11)
    for old, new in (("ms.rivera", "clash.user"), ("sam.lee", "clash.sam"),
                     ("kim.park", "clash.kim"), ("dr.adams", "clash.dee")):
        files = edited(files, "users.csv", old, new)
    bundle = tmp_path / "clash.zip"
    bundle.write_bytes(zip_bundle(files))
    result = run(gateway, "roster", "import", str(bundle), "--tenant", "clash")
    assert result.exit_code == 1, result.output
    assert "users.csv:2: username 'clash.user' belongs to another account" in result.stderr
    assert "nothing was changed" in result.stderr
    with httpx.Client(base_url=gateway.admin,
                      headers={"Authorization": f"Bearer {gateway.token}"}) as admin:
        assert admin.get("/identity/users/clash.sam").status_code == 404
        people = admin.get("/identity/roster/tenants/clash/people").json()
        assert people["data"] == []


def renamed_bundle(tmp_path: Path, suffix: str) -> Path:
    """BUNDLE_11 as a file, its usernames ending in ``.suffix`` (usernames are unique
    installation-wide)."""
    files = dict(BUNDLE_11)
    for old in ("ms.rivera", "sam.lee", "kim.park", "dr.adams"):
        files = edited(files, "users.csv", old, f"{old}.{suffix}")
    bundle = tmp_path / f"{suffix}.zip"
    bundle.write_bytes(zip_bundle(files))
    return bundle


def test_delete_tenant_asks_then_removes_the_district(gateway: ServedGateway,
                                                      tmp_path: Path) -> None:
    bundle = renamed_bundle(tmp_path, "leaving")
    assert run(gateway, "roster", "import", str(bundle), "--tenant", "leaving").exit_code == 0

    argv = ["identity", "roster", "delete-tenant", "leaving", "--admin-url", gateway.admin,
            "--token", gateway.token]
    declined = CliRunner().invoke(app, argv, input="n\n",
                                  env={"CAMPUSGATE_ADMIN_TOKEN": None})
    assert declined.exit_code == 1 and "nothing was removed" in declined.stderr
    assert "Remove roster tenant 'leaving'" in declined.stderr
    assert " leaving " in run(gateway, "roster", "tenants").stdout

    removed = run(gateway, "roster", "delete-tenant", "leaving", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "removed tenant leaving" in removed.stdout
    assert "deleted: 3 enrollments, 4 users, 2 classes, 2 courses, 2 academicSessions, " \
           "3 orgs" in removed.stdout
    assert "accounts: 4 disabled, 4 lost their roster claims" in removed.stdout
    assert " leaving " not in run(gateway, "roster", "tenants").stdout
    with httpx.Client(base_url=gateway.admin,
                      headers={"Authorization": f"Bearer {gateway.token}"}) as admin:
        sam = admin.get("/identity/users/sam.lee.leaving").json()
        assert sam["disabled"] is True and "role" not in sam["claims"]
        assert admin.get("/identity/roster/tenants/leaving/people").status_code == 404
        assert admin.delete("/identity/roster/tenants/leaving").status_code == 404

    again = run(gateway, "roster", "delete-tenant", "leaving", "--yes")
    assert again.exit_code == 1 and "no roster tenant 'leaving'" in again.stderr

    # The usernames stay taken by the disabled accounts: the same people cannot come back.
    clash = run(gateway, "roster", "import", str(bundle), "--tenant", "leaving-again")
    assert clash.exit_code == 1
    assert "username 'ms.rivera.leaving' belongs to another account" in clash.stderr


def test_delete_tenant_can_delete_the_accounts(gateway: ServedGateway,
                                               tmp_path: Path) -> None:
    bundle = renamed_bundle(tmp_path, "moving")
    assert run(gateway, "roster", "import", str(bundle), "--tenant", "mis-named").exit_code == 0

    removed = run(gateway, "roster", "delete-tenant", "mis-named", "--yes",
                  "--delete-accounts")
    assert removed.exit_code == 0, removed.output
    assert "accounts: 4 deleted" in removed.stdout
    with httpx.Client(base_url=gateway.admin,
                      headers={"Authorization": f"Bearer {gateway.token}"}) as admin:
        assert admin.get("/identity/users/sam.lee.moving").status_code == 404
        assert admin.delete("/identity/roster/tenants/x",
                            params={"accounts": "keep"}).status_code == 422
    again = run(gateway, "roster", "import", str(bundle), "--tenant", "well-named")
    assert again.exit_code == 0, again.output
    assert "accounts: 4 created" in again.stdout
