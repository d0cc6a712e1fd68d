"""The pure pieces of graphs/server/auth.py: key parsing, tokens, the JWT hook, ownership rules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from langgraph_sdk import Auth

from graphs.server.auth import (
    ApiUser,
    AuthConfigError,
    auth_mode,
    bearer_token,
    can_resume,
    is_resume_only,
    on_run_create,
    on_store,
    on_thread_read,
    owns_namespace,
    parse_api_keys,
    resolve_user,
    user_of,
)

pytestmark = pytest.mark.anyio

KEYS = "ka:alice:user, kr:rita:reviewer"


def verify_token(token: str) -> dict[str, Any]:
    """A stand-in for a JWT verifier: `WEFT_AUTH_VERIFIER` points here in the tests below."""
    if token != "signed-for-carol":
        raise ValueError("bad signature")
    return {"identity": "carol@example.com", "role": "reviewer"}


async def averify_token(token: str) -> dict[str, Any]:
    return verify_token(token)


def returns_dev(token: str) -> dict[str, Any]:
    return {"identity": "dev"}


VERIFIER = f"{__name__}:verify_token"


def test_parse_api_keys_maps_tokens_to_users() -> None:
    assert parse_api_keys(KEYS) == {
        "ka": ApiUser("alice", "user"),
        "kr": ApiUser("rita", "reviewer"),
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "at least one key"),
        ("secretkey:alice", "not of the form key:identity:role"),
        ("k1:alice:admin", "role of 'alice' is 'admin'; expected one of user, reviewer"),
        ("k1:alice:user,k1:bob:user", "lists the key of 'bob' twice"),
        ("k1:dev:user", "'dev' is reserved"),
    ],
)
def test_parse_api_keys_names_the_problem(spec: str, expected: str) -> None:
    with pytest.raises(AuthConfigError, match=expected):
        parse_api_keys(spec)


def test_a_malformed_entry_does_not_echo_the_key() -> None:
    with pytest.raises(AuthConfigError) as error:
        parse_api_keys("supersecret:alice")
    assert "supersecret" not in str(error.value)


def test_auth_mode_defaults_to_off_and_rejects_unknown_modes() -> None:
    assert auth_mode({}) == "off"
    assert auth_mode({"WEFT_AUTH": " Keys "}) == "keys"
    with pytest.raises(AuthConfigError, match="expected one of off, keys, custom"):
        auth_mode({"WEFT_AUTH": "jwt"})


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer ", None)],
)
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


async def test_resolve_user_off_keys_and_401s() -> None:
    keys = {"WEFT_AUTH": "keys", "WEFT_API_KEYS": KEYS}
    assert await resolve_user(None, {}) is None
    assert await resolve_user("Bearer kr", keys) == ApiUser("rita", "reviewer")
    for header in (None, "Bearer nope"):
        with pytest.raises(Auth.exceptions.HTTPException) as error:
            await resolve_user(header, keys)
        assert error.value.status_code == 401


@pytest.mark.parametrize("verifier", [VERIFIER, f"{__name__}:averify_token"])
async def test_custom_verifier_is_the_jwt_hook(verifier: str) -> None:
    env = {"WEFT_AUTH": "custom", "WEFT_AUTH_VERIFIER": verifier}
    assert await resolve_user("Bearer signed-for-carol", env) == ApiUser(
        "carol@example.com", "reviewer"
    )
    with pytest.raises(Auth.exceptions.HTTPException) as error:
        await resolve_user("Bearer forged", env)
    assert (error.value.status_code, error.value.detail) == (401, "invalid token")


async def test_custom_verifier_misconfiguration_is_a_config_error() -> None:
    with pytest.raises(AuthConfigError, match="must be 'package.module:function'"):
        await resolve_user("Bearer x", {"WEFT_AUTH": "custom", "WEFT_AUTH_VERIFIER": "nomodule"})
    env = {"WEFT_AUTH": "custom", "WEFT_AUTH_VERIFIER": f"{__name__}:returns_dev"}
    with pytest.raises(AuthConfigError, match="reserved"):
        await resolve_user("Bearer x", env)


def test_user_of_accepts_only_our_users() -> None:
    ours = {"identity": "alice", "role": "user"}
    assert user_of(_ProxyLike(ours)) == ApiUser("alice", "user")
    assert user_of(_ProxyLike({"identity": "dev", "role": "user"})) is None
    # LangSmith Studio's built-in user has no role: not one of ours.
    assert user_of(_ProxyLike({"identity": "langgraph-studio-user"})) is None


@pytest.mark.parametrize(
    ("identity", "namespace", "owned"),
    [
        ("alice", ("memories", "alice", "semantic"), True),
        ("alice", ("memories", "alice"), True),
        ("alice", ("org_memories", "acme", "alice", "episodic"), True),
        ("alice", ("memories", "bob", "semantic"), False),
        ("alice", ("memories",), False),
        ("alice", ("alice", "anything"), False),
        ("alice", (), False),
        ("alice", None, False),
        # The identity must sit in the user position, not anywhere in the first two labels.
        ("memories", ("memories", "alice", "semantic"), False),
        ("org_memories", ("org_memories", "alice", "bob"), False),
        # Label encoding as in memory/manager.py: ids with periods are stored with %2E.
        ("a.b@x.io", ("memories", "a%2Eb@x%2Eio", "semantic"), True),
        ("a.b@x.io", ("memories", "a.b@x.io", "semantic"), False),
    ],
)
def test_owns_namespace(identity: str, namespace: Any, owned: bool) -> None:
    assert owns_namespace(identity, namespace) is owned


@pytest.mark.parametrize(
    ("kwargs", "resume_only"),
    [
        ({"command": {"resume": "approve"}}, True),
        ({"command": {"resume": {"c1": {"decision": "reject"}}}, "input": None}, True),
        ({"command": {"resume": "approve"}, "input": {"messages": ["hi"]}}, False),
        ({"command": {"resume": "approve", "goto": "tools"}}, False),
        ({"command": {"resume": "approve", "update": {"x": 1}}}, False),
        (
            {
                "command": {"resume": "approve"},
                "config": {"configurable": {"checkpoint_id": "1ef-old"}},
            },
            False,
        ),
        ({"input": {"messages": ["hi"]}}, False),
        ({}, False),
    ],
)
def test_is_resume_only(kwargs: dict[str, Any], resume_only: bool) -> None:
    assert is_resume_only(kwargs) is resume_only


def test_can_resume() -> None:
    owned = {"owner": "alice"}
    assert can_resume(None, owned)
    assert can_resume(ApiUser("alice", "user"), owned)
    assert not can_resume(ApiUser("bob", "user"), owned)
    assert can_resume(ApiUser("rita", "reviewer"), owned)


class _ProxyLike:
    """Shaped like the server's ProxyUser: attributes plus item access."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.identity = data.get("identity")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]


def _ctx(user: dict[str, Any], resource: str, action: str) -> Any:
    return SimpleNamespace(user=_ProxyLike(user), resource=resource, action=action)


ALICE = {"identity": "alice", "role": "user"}
RITA = {"identity": "rita", "role": "reviewer"}
STUDIO = {"identity": "langgraph-studio-user"}


async def test_reviewer_resume_cannot_move_the_run_to_another_owner() -> None:
    value: dict[str, Any] = {
        "metadata": {"owner": "bob"},
        "kwargs": {
            "command": {"resume": "approve"},
            "config": {"metadata": {"owner": "bob"}, "configurable": {}},
        },
    }
    assert await on_run_create(_ctx(RITA, "threads", "create_run"), value) == {}
    assert "owner" not in value["metadata"]
    assert "owner" not in value["kwargs"]["config"]["metadata"]


async def test_reviewer_new_input_is_limited_to_own_threads() -> None:
    value: dict[str, Any] = {"metadata": {}, "kwargs": {"input": {"messages": ["hi"]}}}
    assert await on_run_create(_ctx(RITA, "threads", "create_run"), value) == {"owner": "rita"}
    assert value["metadata"] == {"owner": "rita"}


async def test_unrecognised_callers_are_refused_when_auth_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEFT_AUTH", "keys")
    with pytest.raises(Auth.exceptions.HTTPException) as error:
        await on_thread_read(_ctx(STUDIO, "threads", "search"), {})
    assert error.value.status_code == 403
    monkeypatch.setenv("WEFT_AUTH", "off")
    assert await on_thread_read(_ctx(STUDIO, "threads", "search"), {}) == {}


async def test_store_listing_without_prefix_is_scoped_to_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEFT_AUTH", "keys")
    value: dict[str, Any] = {"namespace": None, "suffix": None}
    assert await on_store(_ctx(ALICE, "store", "list_namespaces"), value) is True
    assert value["namespace"] == ("memories", "alice")
    with pytest.raises(Auth.exceptions.HTTPException) as error:
        await on_store(_ctx(ALICE, "store", "list_namespaces"), {"namespace": ("memories",)})
    assert error.value.status_code == 403
