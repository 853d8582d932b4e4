"""PKCE (RFC 7636) as RFC 9700 2.1.1 and 4.8.2 want it: S256 required of public
clients, accepted from confidential ones, ``plain`` only by opt-in, no downgrade."""

from __future__ import annotations

from identity_harness import identity_config, sealed
from oauth_harness import Flow, pkce_pair, query_of

from campusgate.identity.context import IdentityContext
from campusgate.keyring import Keyring

MOBILE = {"client_id": "mobile", "redirect_uri": "http://127.0.0.1:49152/callback",
          "scope": "openid offline_access"}


async def test_public_client_with_s256(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = await flow.code(**MOBILE, code_challenge=challenge, code_challenge_method="S256")
    response = await flow.redeem(code, client_id="mobile",
                                 redirect_uri=MOBILE["redirect_uri"], code_verifier=verifier)
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"]


async def test_wrong_verifier_is_invalid_grant(flow: Flow) -> None:
    _, challenge = pkce_pair()
    other, _ = pkce_pair()
    code = await flow.code(**MOBILE, code_challenge=challenge, code_challenge_method="S256")
    response = await flow.redeem(code, client_id="mobile",
                                 redirect_uri=MOBILE["redirect_uri"], code_verifier=other)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_public_client_must_send_the_verifier(flow: Flow) -> None:
    _, challenge = pkce_pair()
    code = await flow.code(**MOBILE, code_challenge=challenge, code_challenge_method="S256")
    response = await flow.redeem(code, client_id="mobile", redirect_uri=MOBILE["redirect_uri"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_public_client_without_challenge_is_refused_at_authorization(
        flow: Flow) -> None:
    response = await flow.authorize(response_type="code", state="s1", **MOBILE)
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert query["state"] == "s1" and query["iss"] == flow.ctx.issuer


async def test_plain_is_refused_by_default(flow: Flow) -> None:
    verifier, _ = pkce_pair()
    for client in ({**MOBILE}, {"client_id": "lms",
                                "redirect_uri": "https://lms.example.edu/callback",
                                "scope": "openid"}):
        response = await flow.authorize(response_type="code", code_challenge=verifier,
                                        code_challenge_method="plain", **client)
        assert query_of(response.headers["location"])["error"] == "invalid_request"
        # a challenge without a method is plain (RFC 7636 4.3)
        response = await flow.authorize(response_type="code", code_challenge=verifier,
                                        **client)
        assert query_of(response.headers["location"])["error"] == "invalid_request"


async def test_plain_for_a_confidential_client_that_opted_in(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring) -> None:
    config = identity_config()
    config.clients[0] = config.clients[0].model_copy(update={"allow_pkce_plain": True})
    identity_ctx.update(sealed(config, keyring))
    verifier, _ = pkce_pair()
    code = await flow.code(code_challenge=verifier, code_challenge_method="plain")
    wrong_verifier = verifier[:-1] + ("y" if verifier.endswith("x") else "x")  # always differs
    wrong = await flow.redeem(code, code_verifier=wrong_verifier)
    assert wrong.json()["error"] == "invalid_grant"
    code = await flow.code(code_challenge=verifier, code_challenge_method="plain")
    assert (await flow.redeem(code, code_verifier=verifier)).status_code == 200


async def test_confidential_client_may_use_s256(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = await flow.code(code_challenge=challenge, code_challenge_method="S256")
    missing = await flow.redeem(code)
    assert missing.json()["error"] == "invalid_request"
    assert (await flow.redeem(code, code_verifier=verifier)).status_code == 200


async def test_verifier_without_a_challenge_is_a_downgrade(flow: Flow) -> None:
    verifier, _ = pkce_pair()
    code = await flow.code()  # lms, no code_challenge
    response = await flow.redeem(code, code_verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unsupported_method_is_refused(flow: Flow) -> None:
    _, challenge = pkce_pair()
    response = await flow.authorize(response_type="code", code_challenge=challenge,
                                    code_challenge_method="S512", **MOBILE)
    assert query_of(response.headers["location"])["error"] == "invalid_request"
