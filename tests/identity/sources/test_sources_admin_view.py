"""Login sources through the admin API: shown without their secrets, kept when the
settings are replaced, and their secret stored only encrypted."""

from __future__ import annotations

from classlink_standin import CLIENT_SECRET
from identity_harness import ServedGateway


def test_the_settings_show_sources_without_secrets(gateway: ServedGateway) -> None:
    with gateway.admin_client() as admin:
        shown = admin.get("/identity")
        exported = admin.get("/config")
    assert shown.status_code == 200, shown.text
    names = [s["name"] for s in shown.json()["sources"]]
    assert names == ["classlink", "district"]
    assert "client_secret" not in shown.text and CLIENT_SECRET not in shown.text
    # the export keeps the sealed (encrypted) secret, so that it can be applied again
    assert CLIENT_SECRET not in exported.text and "enc1$" in exported.text


def test_replacing_the_settings_keeps_the_sources(gateway: ServedGateway) -> None:
    with gateway.admin_client() as admin:
        current = admin.get("/identity").json()
        replaced = admin.put("/identity", json={"issuer": current["issuer"],
                                                "code_lifetime": 45})
        assert replaced.status_code == 200, replaced.text
        assert [s["name"] for s in replaced.json()["sources"]] == ["classlink", "district"]
        patched = admin.patch("/identity", json={"code_lifetime": 50})
        assert patched.status_code == 200, patched.text
        assert len(patched.json()["sources"]) == 2
