"""The access settings as read from the environment: EVENTAPI_API_KEYS, _PUBLIC_READS, _ENV,
_CORS_ORIGINS and _TRUSTED_PROXIES (comma-separated values, normalised, bad ones refused
with a message that names the entry and never repeats a key)."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from eventapi.settings import ApiKeys, Settings

KEY = "k3y-0123456789abcdefghij"
OTHER = "other-0123456789abcdefgh"


def from_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name in ("API_KEYS", "PUBLIC_READS", "ENV", "CORS_ORIGINS", "TRUSTED_PROXIES"):
        monkeypatch.delenv(f"EVENTAPI_{name}", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(f"EVENTAPI_{name.upper()}", value)
    return Settings()


def refused(monkeypatch: pytest.MonkeyPatch, **variables: str) -> tuple[str, str]:
    """(the variable's field, the message) of the error these variables cause."""
    with pytest.raises(ValidationError) as caught:
        from_env(monkeypatch, **variables)
    [error] = caught.value.errors()
    # hide_input_in_errors: no key is repeated, even in a traceback.
    keys = [key.strip() for key in variables.get("api_keys", "").split(",")]
    for key in filter(None, keys):
        assert key not in str(caught.value)
    return ".".join(map(str, error["loc"])), error["msg"]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(monkeypatch)

    assert not settings.api_keys
    assert settings.public_reads is True
    assert settings.env == "development"
    assert settings.cors_origin_list == ()
    assert settings.trusted_proxy_list == ()
    assert settings.refusal() is None


def test_keys_are_kept_as_digests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(monkeypatch, api_keys=f" {KEY} ,{OTHER},{KEY}")

    assert settings.api_keys.digests == (
        hashlib.sha256(KEY.encode()).digest(),
        hashlib.sha256(OTHER.encode()).digest(),
    )
    assert len(settings.api_keys) == 2
    assert repr(settings.api_keys) == "ApiKeys(<2 keys>)"
    for shown in (repr(settings), settings.model_dump_json()):
        assert KEY not in shown
    assert Settings(api_keys=settings.api_keys).api_keys is settings.api_keys


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_key_list_means_no_keys(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert not from_env(monkeypatch, api_keys=value).api_keys


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{KEY},,{OTHER}", "key 2 is empty"),
        (f"{KEY},", "key 2 is empty"),
        (f",{KEY}", "key 1 is empty"),
        (f"{KEY}, short-key", "key 2 is shorter than 16 characters"),
        (f"{KEY}, {OTHER} {OTHER}", "key 2 has a character that is not printable ASCII"),
        (f"{KEY}é", "key 1 has a character that is not printable ASCII"),
    ],
)
def test_bad_keys_are_refused_without_being_repeated(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    field, text = refused(monkeypatch, api_keys=value)

    assert field == "api_keys"
    assert message in text
    assert KEY not in text
    assert OTHER not in text


def test_keys_must_be_text() -> None:
    with pytest.raises(ValidationError, match="expected comma-separated API keys"):
        Settings.model_validate({"api_keys": 42})


def test_production_needs_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    refusal = from_env(monkeypatch, env="production").refusal()
    assert refusal is not None
    assert "EVENTAPI_API_KEYS" in refusal
    assert "\n" not in refusal
    assert from_env(monkeypatch, env="production", api_keys=KEY).refusal() is None
    assert refused(monkeypatch, env="staging")[0] == "env"


def test_public_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert from_env(monkeypatch, public_reads="false").public_reads is False
    assert refused(monkeypatch, public_reads="maybe")[0] == "public_reads"


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("https://app.example.com", ("https://app.example.com",)),
        (
            " HTTPS://App.Example.com:443 , http://localhost:3000,http://x.org:80",
            ("https://app.example.com", "http://localhost:3000", "http://x.org"),
        ),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
        ("*", ("*",)),
    ],
)
def test_cors_origins(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: tuple[str, ...]
) -> None:
    assert from_env(monkeypatch, cors_origins=value).cors_origin_list == origins


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://app.example.com/", "no path"),
        ("https://app.example.com/app", "no path"),
        ("https://app.example.com?x=1", "no path"),
        ("https://user@app.example.com", "or user"),
        ("app.example.com", "scheme http or https"),
        ("ftp://app.example.com", "scheme http or https"),
        ("https://", "scheme http or https"),
        ("https://app.example.com:99999", "bad port"),
        ("https://a.example,,https://b.example", "entry 2 is empty"),
        ("*,https://a.example", '"*" (any) cannot be combined'),
    ],
)
def test_bad_cors_origins(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    field, text = refused(monkeypatch, cors_origins=value)
    assert field == "cors_origins"
    assert message in text


@pytest.mark.parametrize(
    ("value", "proxies"),
    [
        ("10.0.0.5", ("10.0.0.5",)),
        (" 10.1.2.3/8 , ::1,2001:db8::/32", ("10.0.0.0/8", "::1", "2001:db8::/32")),
        ("*", ("*",)),
    ],
)
def test_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch, value: str, proxies: tuple[str, ...]
) -> None:
    assert from_env(monkeypatch, trusted_proxies=value).trusted_proxy_list == proxies


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.local", "entry 1 is not an IP address or CIDR"),
        ("10.0.0.1,10.0.0.0/33", "entry 2 is not an IP address or CIDR"),
        ("10.0.0.1,", "entry 2 is empty"),
        ("*,10.0.0.1", '"*" (any) cannot be combined'),
    ],
)
def test_bad_trusted_proxies(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    field, text = refused(monkeypatch, trusted_proxies=value)
    assert field == "trusted_proxies"
    assert message in text


def test_api_keys_parse_directly() -> None:
    assert ApiKeys.parse(KEY).digests == (hashlib.sha256(KEY.encode()).digest(),)
    assert ApiKeys().digests == ()
