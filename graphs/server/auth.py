"""Authentication and authorization for the LangGraph server (`langgraph.json` `auth.path`).

Switched by environment, so one `langgraph.json` serves local development and production:

    WEFT_AUTH=off      (default) every request is let through as an unauthenticated developer;
                       runs use the `user_id` from their context, as in Python.
    WEFT_AUTH=keys     bearer tokens from WEFT_API_KEYS="key1:alice:user,key2:rita:reviewer"
                       (`Authorization: Bearer key1`); a missing or unknown token is a 401.
    WEFT_AUTH=custom   WEFT_AUTH_VERIFIER="package.module:function" is called with the bearer
                       token and returns {"identity": ..., "role": "user"|"reviewer"} (sync or
                       async) or raises; this is the hook for JWT/OIDC verification: decode and
                       verify the token there (signature, `exp`, `aud`, `iss`) and map a claim
                       (`sub`) to the identity and a group or scope claim to the role.

With auth on, who may do what (the rules the e2e tests in tests/e2e/test_auth_server.py prove):

    everyone   reads and searches the graphs (assistants); nobody creates or edits assistants
               through the API (graphs change by deploying).
    user       creates threads, runs and crons, which are stamped `metadata.owner = <identity>`
               (an owner the caller sends is overwritten); reads, searches, runs on, updates
               (state, metadata), cancels, copies and deletes only threads it owns; the store
               API only under its own namespaces (see `owns_namespace`).
    reviewer   everything a user may do on its own resources, plus: reads and searches every
               thread (state, history, runs: a reviewer has to see what it approves), and
               answers an interrupt on any thread with a resume-only run (`command.resume`, no
               input, goto, update or checkpoint). It cannot start new input on, update,
               cancel or delete someone else's thread, nor reach someone else's memories.

A resumed run acts for the thread owner, not the reviewer (nodes/identity.py), so memory and
audit lines stay the owner's. A caller the handler does not recognise while auth is on (for
example LangSmith Studio's built-in user, if `disable_studio_auth` were turned off) is refused
with a 403 rather than treated as the unauthenticated developer.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from langgraph_sdk import Auth

from memory.manager import NAMESPACE_ROOT, ORG_NAMESPACE_ROOT, namespace_label
from nodes.identity import OWNER_METADATA_KEY

logger = logging.getLogger(__name__)

Role = Literal["user", "reviewer"]
ROLES: tuple[str, ...] = get_args(Role)
AuthMode = Literal["off", "keys", "custom"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)
DEV_IDENTITY = "dev"
"""Identity of the unauthenticated developer user when auth is off (reserved: no key may use it)."""
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


def _checked_user(identity: Any, role: Any, source: str) -> ApiUser:
    if not isinstance(identity, str) or not identity.strip():
        raise AuthConfigError(f"{source}: identity must be a non-empty string, got {identity!r}")
    if identity == DEV_IDENTITY:
        raise AuthConfigError(
            f"{source}: identity {DEV_IDENTITY!r} is reserved for the unauthenticated developer"
        )
    if role not in ROLES:
        raise AuthConfigError(
            f"{source}: role of {identity!r} is {role!r}; expected one of {', '.join(ROLES)}"
        )
    return ApiUser(identity=identity, role=cast(Role, role))


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
        if key in users:
            raise AuthConfigError(f"WEFT_API_KEYS lists the key of {identity!r} twice")
        users[key] = _checked_user(identity, role, "WEFT_API_KEYS")
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
        raise AuthConfigError(f"WEFT_AUTH_VERIFIER={path!r} must be 'package.module:function'")
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise AuthConfigError(f"WEFT_AUTH_VERIFIER {path!r} does not name a callable")
    return cast(Callable[[str], Any], function)


def _unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _forbidden(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=403, detail=detail)


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
    if not isinstance(claims, Mapping):
        raise AuthConfigError(
            f"WEFT_AUTH_VERIFIER returned {claims!r}; expected "
            f"{{'identity': <non-empty str>, 'role': one of {', '.join(ROLES)}}}"
        )
    return _checked_user(claims.get("identity"), claims.get("role", "user"), "WEFT_AUTH_VERIFIER")


# --- pure authorization rules (shared by the handlers below and the approvals inbox) ---


def user_of(ctx_user: Any) -> ApiUser | None:
    """The ApiUser behind a server user object; None for the dev user, Studio and strangers."""
    try:
        role = ctx_user["role"]
        identity = ctx_user.identity
    except (KeyError, AttributeError, TypeError, NotImplementedError):
        return None
    if role not in ROLES or not isinstance(identity, str) or not identity:
        return None
    if identity == DEV_IDENTITY:
        return None
    return ApiUser(identity=identity, role=cast(Role, role))


def owner_filter(user: ApiUser) -> dict[str, str]:
    """Metadata filter restricting a resource to `user`'s own."""
    return {OWNER_METADATA_KEY: user.identity}


def is_resume_only(run_kwargs: Mapping[str, Any]) -> bool:
    """True when a run only answers an interrupt at the thread's latest checkpoint.

    That is a `command` with `resume` and nothing else that changes the thread: no new input,
    no `goto`/`update`, and no checkpoint pin (which would fork from an earlier state).
    """
    command = run_kwargs.get("command") or {}
    configurable = (run_kwargs.get("config") or {}).get("configurable") or {}
    return (
        isinstance(command, Mapping)
        and command.get("resume") is not None
        and not run_kwargs.get("input")
        and not command.get("goto")
        and not command.get("update")
        and not configurable.get("checkpoint_id")
    )


def can_resume(user: ApiUser | None, thread_metadata: Mapping[str, Any]) -> bool:
    """Whether `user` may answer an interrupt on a thread (None = auth off: anyone may)."""
    if user is None:
        return True
    return user.role == "reviewer" or thread_metadata.get(OWNER_METADATA_KEY) == user.identity


def can_see(user: ApiUser | None, thread_metadata: Mapping[str, Any]) -> bool:
    """Whether `user` may read a thread (its state, its pending approvals)."""
    return can_resume(user, thread_metadata)


def owned_prefixes(identity: str) -> tuple[tuple[str, ...], ...]:
    """Namespace prefixes the store API lets `identity` reach, in memory/manager.py's layout.

    `("memories", <identity>)`, and `("org_memories", "*", <identity>)` where `"*"` stands for
    any one organisation label. Identities are label-encoded the way the memory layer does it.
    """
    label = namespace_label(identity, "identity")
    return ((NAMESPACE_ROOT, label), (ORG_NAMESPACE_ROOT, "*", label))


def owns_namespace(identity: str, namespace: Sequence[str] | None) -> bool:
    """Whether `namespace` (or a namespace prefix) lies inside `identity`'s own memories.

    An exact positional match on the layout, never "the identity appears somewhere": a user
    named `memories` must not reach `("memories", <someone else>, ...)`.
    """
    if not namespace:
        return False
    labels = tuple(namespace)
    for prefix in owned_prefixes(identity):
        if len(labels) < len(prefix):
            continue
        if all(p == "*" or p == label for p, label in zip(prefix, labels, strict=False)):
            return True
    return False


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


def _caller(ctx: Auth.types.AuthContext) -> ApiUser | None:
    """The request's ApiUser; None when auth is off; a 403 for a user we did not authenticate."""
    user = user_of(ctx.user)
    if user is None and auth_mode() != "off":
        raise _forbidden(f"{ctx.resource}.{ctx.action} is not allowed for this caller")
    return user


def _stamp_owner(value: Mapping[str, Any], user: ApiUser) -> None:
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata[OWNER_METADATA_KEY] = user.identity
    elif isinstance(value, dict):
        value["metadata"] = {OWNER_METADATA_KEY: user.identity}


@auth.on.threads.create
async def on_thread_create(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """New threads belong to their creator (any owner the caller sent is overwritten)."""
    user = _caller(ctx)
    if user is None:
        return {}
    _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.threads.create_run
async def on_run_create(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Runs on own threads; reviewers may also resume (answer an interrupt on) any thread."""
    user = _caller(ctx)
    if user is None:
        return {}
    # The server passes the run's payload (input, command, config, context, ...) as `kwargs`.
    kwargs = value.get("kwargs") or {}
    if user.role == "reviewer" and is_resume_only(kwargs):
        # The run's metadata is thread metadata < config.metadata < run metadata: drop the
        # owner from both of the caller's layers so the thread owner's stamp stands and the
        # resumed run acts for the owner, whoever the reviewer claims it is.
        for metadata in (value.get("metadata"), (kwargs.get("config") or {}).get("metadata")):
            if isinstance(metadata, dict):
                metadata.pop(OWNER_METADATA_KEY, None)
        return {}
    _stamp_owner(value, user)
    return owner_filter(user)


@auth.on(resources="threads", actions=["read", "search"])
async def on_thread_read(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Users see their own threads; reviewers see every thread (to find pending approvals)."""
    user = _caller(ctx)
    if user is None or user.role == "reviewer":
        return {}
    return owner_filter(user)


@auth.on(resources="threads", actions=["update", "delete"])
async def on_thread_write(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Only the owner changes, cancels runs on or deletes a thread (reviewers included)."""
    user = _caller(ctx)
    if user is None:
        return {}
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.crons
async def on_crons(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Crons belong to their creator."""
    user = _caller(ctx)
    if user is None:
        return {}
    if isinstance(value, dict) and "metadata" in value:
        _stamp_owner(value, user)
    return owner_filter(user)


@auth.on.assistants
async def on_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Graphs are shared: everyone may read them; only the dev setup may change them."""
    user = _caller(ctx)
    if user is None:
        return True
    return ctx.action in {"read", "search"}


@auth.on.store
async def on_store(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """The store API reaches only the caller's own namespaces (`owns_namespace`).

    Listing namespaces without a prefix is scoped to the caller's `("memories", <identity>)`.
    """
    user = _caller(ctx)
    if user is None:
        return True
    namespace = value.get("namespace")
    if ctx.action == "list_namespaces" and not namespace:
        value["namespace"] = owned_prefixes(user.identity)[0]
        return True
    if owns_namespace(user.identity, namespace):
        return True
    shown = tuple(namespace or ())
    raise _forbidden(f"namespace {shown!r} does not belong to {user.identity!r}")


__all__ = [
    "AUTH_MODES",
    "ApiUser",
    "AuthConfigError",
    "DEV_IDENTITY",
    "ROLES",
    "auth",
    "auth_mode",
    "bearer_token",
    "can_resume",
    "can_see",
    "is_resume_only",
    "owned_prefixes",
    "owner_filter",
    "owns_namespace",
    "parse_api_keys",
    "resolve_user",
    "user_of",
]
