"""Who a run acts for: the authenticated server user when there is one, else `Context.user_id`.

On a LangGraph server with our auth handler (graphs/server/auth.py) the API puts the caller in
`config["configurable"]["langgraph_auth_user"]`, and the thread's metadata (merged into the
run's `config["metadata"]`) carries the thread owner the handler stamped at creation. The owner
wins over the caller so that a reviewer resuming someone else's thread does not move that
thread's memories and audit lines into the reviewer's namespace. Without an authenticated user
(Python callers, the CLI, `langgraph dev` with auth off) nothing here applies and the
`user_id` the caller put in the Context stands. `nodes.context.context_of` calls
`server_user_id()` so every node sees the same answer (one code path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.config import get_config

OWNER_METADATA_KEY = "owner"
"""Thread/run metadata key holding the owning user's identity (stamped by the auth handler)."""

AUTH_USER_KEY = "langgraph_auth_user"
"""Where the LangGraph API puts the authenticated user in `config["configurable"]`."""

_UNTRUSTED_KINDS = frozenset({"StudioUser"})
"""Studio's built-in developer user is not a real end user; it never overrides user_id."""


def _user_field(user: Any, name: str) -> Any:
    if isinstance(user, Mapping):
        return user.get(name)
    try:
        return getattr(user, name)
    except (AttributeError, NotImplementedError):
        pass
    try:
        return user[name]
    except (KeyError, TypeError, IndexError):
        return None


def authenticated_identity(user: Any) -> str | None:
    """The identity of an authenticated, non-Studio server user; None for anything else."""
    if user is None:
        return None
    kind = _user_field(user, "kind") or type(user).__name__
    if kind in _UNTRUSTED_KINDS:
        return None
    if _user_field(user, "is_authenticated") is False:
        return None
    identity = _user_field(user, "identity")
    return identity if isinstance(identity, str) and identity else None


def user_id_from_config(config: Mapping[str, Any]) -> str | None:
    """The user a server run acts for (thread owner, else caller), or None when unauthenticated.

    Pure: reads only `config`. The thread owner is trusted only when an authenticated user is
    present, because only then did our auth handler write (and protect) that metadata.
    """
    configurable = config.get("configurable") or {}
    identity = authenticated_identity(configurable.get(AUTH_USER_KEY))
    if identity is None:
        return None
    owner = (config.get("metadata") or {}).get(OWNER_METADATA_KEY)
    return owner if isinstance(owner, str) and owner else identity


def server_user_id() -> str | None:
    """`user_id_from_config` for the config of the running node (None outside a run)."""
    try:
        config = get_config()
    except RuntimeError:
        return None
    return user_id_from_config(config)


__all__ = [
    "AUTH_USER_KEY",
    "OWNER_METADATA_KEY",
    "authenticated_identity",
    "server_user_id",
    "user_id_from_config",
]
