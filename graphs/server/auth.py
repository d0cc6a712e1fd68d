"""Authentication and authorization for the LangGraph server (`langgraph.json` `auth.path`).

Switched by environment, so one `langgraph.json` serves local development and production:

    WEFT_AUTH=off      (default) every request is let through as an unauthenticated developer;
                       runs use the `user_id` from their context, as in Python.
    WEFT_AUTH=keys     bearer tokens from WEFT_API_KEYS="key1:alice:user,key2:bob:reviewer"
                       (`Authorization: Bearer key1`); a missing or unknown token is a 401.
    WEFT_AUTH=custom   WEFT_AUTH_VERIFIER="package.module:function" is called with the bearer
                       token and returns {"identity": ..., "role": "user"|"reviewer"} (sync or
                       async) or raises; this is the hook for JWT/OIDC verification.

With auth on, threads, runs and crons belong to their creator: the handler stamps
`metadata.owner` on create and filters every read, search, update, run and delete by it, so a
user cannot see, resume or list another user's threads. A `reviewer` may additionally read and
search every thread and resume any thread with a `command` (that is how approvals are
resolved), but cannot start new input on someone else's thread. The store API is limited to the
caller's own namespaces (`("memories", <identity>, ...)`). Runs inherit the thread owner as
their user (nodes/identity.py), so memory and audit stay the owner's even when a reviewer
resumes.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from langgraph_sdk import Auth

from nodes.identity import OWNER_METADATA_KEY

logger = logging.getLogger(__name__)

Role = Literal["user", "reviewer"]
ROLES: tuple[str, ...] = get_args(Role)
AuthMode = Literal["off", "keys", "custom"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)
DEV_IDENTITY = "dev"
"""Identity of the unauthenticated developer user when auth is off."""
RESOLVE_APPROVALS = "approvals:resolve"
"""Permission carried by reviewers."""


class AuthConfigError(ValueError):
    """WEFT_AUTH / WEFT_API_KEYS / WEFT_AUTH_VERIFIER hold values that cannot be used."""


@dataclass(frozen=True)
class ApiUser:
    """One caller: who they are and what they may do."""

    identity: str
    role: Role

    def as_auth_user(self) -> dict[str, Any]:
        """The user dict the LangGraph server keeps for the request."""
        permissions = [f"role:{self.role}"]
        if self.role == "reviewer":
            permissions.append(RESOLVE_APPROVALS)
        return {
            "identity": self.identity,
            "display_name": self.identity,
            "is_authenticated": True,
            "role": self.role,
            "permissions": permissions,
        }


def auth_mode(env: Mapping[str, str] | None = None) -> AuthMode:
    """The configured mode (WEFT_AUTH), validated."""
    env = os.environ if env is None else env
    mode = (env.get("WEFT_AUTH") or "off").strip().lower()
    if mode not in AUTH_MODES:
        raise AuthConfigError(
            f"WEFT_AUTH={mode!r} is not supported; expected one of {', '.join(AUTH_MODES)}"
        )
    return cast(AuthMode, mode)


def parse_api_keys(spec: str) -> dict[str, ApiUser]:
    """Parse `key:identity:role` entries separated by commas into a token -> user map."""
    users: dict[str, ApiUser] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) != 3 or not all(parts):
            raise AuthConfigError(
                f"WEFT_API_KEYS entry {_masked(entry)!r} is not of the form key:identity:role"
            )
        key, identity, role = parts
        if role not in ROLES:
            raise AuthConfigError(
                f"WEFT_API_KEYS entry for {identity!r} has role {role!r}; "
                f"expected one of {', '.join(ROLES)}"
            )
        if key in users:
            raise AuthConfigError(f"WEFT_API_KEYS lists the key of {identity!r} twice")
        users[key] = ApiUser(identity=identity, role=cast(Role, role))
    if not users:
        raise AuthConfigError("WEFT_AUTH=keys needs WEFT_API_KEYS with at least one key")
    return users


def _masked(entry: str) -> str:
    key, _, rest = entry.partition(":")
    return f"{key[:2]}…:{rest}" if rest else f"{key[:2]}…"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None when absent or malformed)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _load_verifier(path: str) -> Callable[[str], Any]:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise AuthConfigError(
            f"WEFT_AUTH_VERIFIER={path!r} must be 'package.module:function'"
        )
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise AuthConfigError(f"WEFT_AUTH_VERIFIER {path!r} does not name a callable")
    return cast(Callable[[str], Any], function)


def _unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def resolve_user(
    authorization: str | None, env: Mapping[str, str] | None = None
) -> ApiUser | None:
    """Who sent a request: None when auth is off, an ApiUser otherwise; raises a 401 error."""
    env = os.environ if env is None else env
    mode = auth_mode(env)
    if mode == "off":
        return None
    token = bearer_token(authorization)
    if token is None:
        raise _unauthorized("missing bearer token")
    if mode == "keys":
        user = parse_api_keys(env.get("WEFT_API_KEYS", "")).get(token)
        if user is None:
            raise _unauthorized("unknown API key")
        return user
    verifier = _load_verifier(env.get("WEFT_AUTH_VERIFIER", ""))
    try:
        claims = verifier(token)
        if inspect.isawaitable(claims):
            claims = await claims
    except Auth.exceptions.HTTPException:
        raise
    except Exception as exc:  # the verifier's own errors mean "not authenticated"
        logger.info("token rejected by verifier: %r", exc)
        raise _unauthorized("invalid token") from None
    identity, role = (claims or {}).get("identity"), (claims or {}).get("role", "user")
    if not isinstance(identity, str) or not identity or role not in ROLES:
        raise AuthConfigError(
            f"WEFT_AUTH_VERIFIER returned {claims!r}; expected "
            f"{{'identity': <non-empty str>, 'role': one of {', '.join(ROLES)}}}"
        )
    return ApiUser(identity=identity, role=cast(Role, role))


# --- pure authorization rules (shared by the handlers below and the approvals inbox) ---


def user_of(ctx_user: Any) -> ApiUser | None:
    """The ApiUser behind a server user object, None for the dev user or Studio."""
    try:
        role = ctx_user["role"]
        identity = ctx_user.identity
    except (KeyError, AttributeError, TypeError, NotImplementedError):
        return None
    if role not in ROLES or not identity or identity == DEV_IDENTITY:
        return None
    return ApiUser(identity=str(identity), role=cast(Role, role))


def owner_filter(user: ApiUser) -> dict[str, str]:
    """Metadata filter restricting a resource to `user`'s own."""
    return {OWNER_METADATA_KEY: user.identity}


def is_resume_only(run_kwargs: Mapping[str, Any]) -> bool:
    """True when a run only answers an interrupt (a `command` with `resume`, no new input)."""
    command = run_kwargs.get("command") or {}
    return (
        isinstance(command, Mapping)
        and command.get("resume") is not None
        and not run_kwargs.get("input")
        and not command.get("goto")
        and not command.get("update")
    )


def can_resume(user: ApiUser | None, thread_metadata: Mapping[str, Any]) -> bool:
    """Whether `user` may answer an interrupt on a thread (None = auth off: anyone may)."""
    if user is None:
        return True
    return user.role == "reviewer" or thread_metadata.get(OWNER_METADATA_KEY) == user.identity


def can_see(user: ApiUser | None, thread_metadata: Mapping[str, Any]) -> bool:
    """Whether `user` may read a thread (its state, its pending approvals)."""
    return can_resume(user, thread_metadata)


# --- the handler the server loads ---

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> dict[str, Any]:
    """Map the bearer token to a user; with auth off, an unauthenticated developer."""
    user = await resolve_user(authorization)
    if user is None:
        return {
            "identity": DEV_IDENTITY,
            "display_name": DEV_IDENTITY,
            "is_authenticated": False,
            "permissions": [],
        }
    return user.as_auth_user()


def _stamp_owner(value: Mapping[str, Any], user: ApiUser) -> None:
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata[OWNER_METADATA_KEY] = user.identity
    elif isinstance(value, dict):
        value["metadata"] = {OWNER_METADATA_KEY: user.identity}


@auth.on.threads.create
async def on_thread_create(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """New threads belong to their creator (any owner the caller sent is overwritten)."""
    user = user_of(ctx.user)
    if user is None:
        return {}
    _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.threads.create_run
async def on_run_create(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Runs on own threads; reviewers may also resume (answer an interrupt on) any thread."""
    user = user_of(ctx.user)
    if user is None:
        return {}
    metadata = value.get("metadata")
    if user.role == "reviewer" and is_resume_only(value.get("kwargs") or {}):
        # Keep the thread owner's stamp: the resumed run acts for the owner, not the reviewer.
        if isinstance(metadata, dict):
            metadata.pop(OWNER_METADATA_KEY, None)
        return {}
    _stamp_owner(value, user)
    return owner_filter(user)


# One handler serves both actions; the SDK types each decorator for its own value type.
@auth.on.threads.read  # type: ignore[arg-type]
@auth.on.threads.search
async def on_thread_read(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Users see their own threads; reviewers see every thread (to find pending approvals)."""
    user = user_of(ctx.user)
    if user is None or user.role == "reviewer":
        return {}
    return owner_filter(user)


@auth.on.threads.update  # type: ignore[arg-type]
@auth.on.threads.delete
async def on_thread_write(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Only the owner changes or deletes a thread (cancelling its runs included)."""
    user = user_of(ctx.user)
    if user is None:
        return {}
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.crons
async def on_crons(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Crons belong to their creator."""
    user = user_of(ctx.user)
    if user is None:
        return {}
    if isinstance(value, dict) and "metadata" in value:
        _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.assistants
async def on_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Graphs are shared: everyone may read them; only the dev setup may change them."""
    user = user_of(ctx.user)
    if user is None:
        return True
    action = getattr(ctx, "action", "")
    return action in {"read", "search"}


@auth.on.store
async def on_store(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """The store API reaches only the caller's own namespaces (`(*, <identity>, ...)`)."""
    user = user_of(ctx.user)
    if user is None:
        return True
    namespace = tuple(value.get("namespace") or ())
    if user.identity in namespace[:2]:
        return True
    raise Auth.exceptions.HTTPException(
        status_code=403, detail=f"namespace {namespace!r} does not belong to {user.identity!r}"
    )


__all__ = [
    "AUTH_MODES",
    "ApiUser",
    "AuthConfigError",
    "ROLES",
    "auth",
    "auth_mode",
    "bearer_token",
    "can_resume",
    "can_see",
    "is_resume_only",
    "owner_filter",
    "parse_api_keys",
    "resolve_user",
    "user_of",
]
