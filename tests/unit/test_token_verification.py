"""A token's signature is checked once and remembered until the token expires; a
remembered token still stops working at its expiry and under another secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.auth import AuthenticationError, issue_token, verify_token
from infra.settings import Settings


def settings(tmp_path: Path, secret: str) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=secret)


def test_a_remembered_token_still_expires(tmp_path):
    s = settings(tmp_path, "s" * 40)
    token = issue_token(s, "clerk", ["registrar"], ttl_s=1)
    assert verify_token(s, token).subject == "clerk"
    assert verify_token(s, token).roles == ("registrar",)
    time.sleep(1.1)
    with pytest.raises(AuthenticationError, match="expired"):
        verify_token(s, token)


def test_a_remembered_token_is_refused_under_another_secret(tmp_path):
    token = issue_token(settings(tmp_path, "a" * 40), "clerk", ["registrar"])
    assert verify_token(settings(tmp_path, "a" * 40), token).subject == "clerk"
    with pytest.raises(AuthenticationError, match="not valid"):
        verify_token(settings(tmp_path, "b" * 40), token)


def test_a_tampered_token_is_refused_after_the_real_one_was_accepted(tmp_path):
    s = settings(tmp_path, "c" * 40)
    token = issue_token(s, "clerk", ["registrar"])
    verify_token(s, token)
    head, claims, signature = token.split(".")
    forged = ".".join((head, claims, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    with pytest.raises(AuthenticationError):
        verify_token(s, forged)
