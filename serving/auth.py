"""API keys, the request size cap and one error format, as a pure ASGI middleware (:class:`Guard`).

Every path but health, readiness, metrics, the OpenAPI docs and the page's shell (``/app``) needs ``Authorization: Bearer <key>``;
the key is compared in constant time against every configured key. A key may carry a name and a role
(``KEY name=NAME role=read|plan|admin`` in the key file or ``CHURNCLV_API_KEYS``): ``read`` scores and
the page, ``plan`` also campaigns and exports, ``admin`` also reload, suppressions and erasure. A key
without a role keeps every right; the key's name (never the key) is what the audit trail records. Requests per key and failed
authentications per client address are limited (:mod:`serving.limits`: 429 with Retry-After). Bodies over the byte limit get
413 whether or not they announce a Content-Length. Error answers from BentoML or Starlette are
rewritten into ``{"error": {"code", "message", "details"}}`` (:func:`serving.errors.normalise`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.settings import MAX_BODY_BYTES, Settings, parse_keys
from churnclv.serving.errors import error_body, normalise
from churnclv.serving.limits import RateLimits, Refusal, count_refusal

#: An API key has at least this many characters (``churnclv quickstart`` writes 43).
MIN_KEY_LENGTH = 16
#: Seconds a client has to send the whole request body once its head has arrived; then 408.
BODY_SECONDS = 30.0

# /app and /app/static/ are the marketers' page and its scripts (no data: the page asks for a key, then sends it)
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/schema.json", "/app"})
PUBLIC_PREFIXES = ("/static_content/", "/assets/", "/app/static/")
JSON_TYPES = (b"", b"application/json")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AccessError(ChurnclvError, ValueError):
    """The server must not start with this access configuration (message meant for the user)."""


#: What a key may do, each role including the ones before it: scores and the page; campaigns and
#: exports; reload, suppressions and erasure. A key given without a role has every right (``admin``).
ROLES = ("read", "plan", "admin")


@dataclass(frozen=True)
class Identity:
    """Who a key is, as the audit trail names it (never the key), and its role."""

    name: str
    role: str = "admin"


def key_name(key: str) -> str:
    """The name of a key given without one: ``key-`` and the first 8 hex digits of its SHA-256."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_key_entry(entry: str, where: str) -> tuple[str, Identity]:
    """``KEY [name=NAME] [role=read|plan|admin]`` (a line of the key file, or an item of CHURNCLV_API_KEYS)."""
    key, *options = entry.split()
    fields: dict[str, str] = {}
    for option in options:
        label, sep, value = option.partition("=")
        if not sep or label not in ("name", "role") or not value:
            raise AccessError(f"{where}: {option!r} after a key is not name=NAME or role=ROLE")
        fields[label] = value
    role = fields.get("role", "admin")
    if role not in ROLES:
        raise AccessError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    return key, Identity(fields.get("name", key_name(key)), role)


def required_role(method: str, path: str) -> str:
    """The least role a request needs: admin to reload, suppress and erase; plan for campaigns and
    exports (the page's too); read for the rest (scores, previews, the page)."""
    if path == "/reload" or path.startswith("/suppressions") or (method == "DELETE" and path.startswith("/customers/")):
        return "admin"
    if path.startswith(("/campaigns", "/app/campaigns")) or path == "/app/plan.csv":
        return "plan"
    return "read"


def allows(identity: Identity, role: str) -> bool:
    return ROLES.index(identity.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Access:
    """Who may call the service (keys, or open to loopback clients) and the request body limit in bytes.

    ``identities`` name each key and give its role, in the order of ``keys`` (a key without one: every
    right, named by :func:`key_name`)."""

    keys: tuple[bytes, ...]
    open: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    body_seconds: float = BODY_SECONDS
    identities: tuple[Identity, ...] = ()
    limits: RateLimits | None = None  # requests per key, failed authentications per address (serving.limits)

    def identity(self, index: int) -> Identity:
        if index < len(self.identities):
            return self.identities[index]
        return Identity(key_name(self.keys[index].decode()))

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        """Keys from CHURNCLV_API_KEYS and CHURNCLV_API_KEYS_FILE (read here, once); the local key file
        ``$CHURNCLV_HOME/.churnclv_api_key`` only when neither is set, so that setting keys revokes it.
        CHURNCLV_OPEN with BENTOML_HOST a loopback address serves without keys; CHURNCLV_MAX_BODY_BYTES
        caps request bodies; CHURNCLV_RATE_LIMIT and CHURNCLV_AUTH_FAILURE_LIMIT limit keyed access. Raises :class:`AccessError` when the server must not start (also for a key
        shorter than :data:`MIN_KEY_LENGTH`)."""
        path = key_file(settings)
        source = "CHURNCLV_API_KEYS_FILE" if settings.api_keys_file is not None else "the local key file"
        given = [parse_key_entry(e, "CHURNCLV_API_KEYS") for e in settings.api_keys]
        check_key_lengths([k for k, _ in given], "CHURNCLV_API_KEYS")
        from_file = [parse_key_entry(e, f"{source} {path}") for e in read_keys(path)]
        check_key_lengths([k for k, _ in from_file], f"{source} {path}")
        entries = dict(given + from_file)  # a key twice: its last entry
        check_access(keys=list(entries), open_=settings.open, host=settings.host)
        return cls(tuple(k.encode() for k in entries), settings.open and not entries, settings.max_body_bytes,
                   identities=tuple(entries.values()), limits=RateLimits.from_settings(settings) if entries else None)


def key_file(settings: Settings) -> Path | None:
    """CHURNCLV_API_KEYS_FILE; else the local key file, unless CHURNCLV_API_KEYS names the keys."""
    if settings.api_keys_file is not None:
        return settings.api_keys_file.expanduser()
    return None if settings.api_keys else settings.keys_file


def check_key_lengths(keys: tuple[str, ...] | list[str], where: str) -> None:
    """One line naming where a too-short key was set (never the key itself)."""
    short = sum(len(k) < MIN_KEY_LENGTH for k in keys)
    if short:
        raise AccessError(f"{where}: {short} API key(s) shorter than {MIN_KEY_LENGTH} characters; use long random "
                          "keys, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'")


def read_keys(path: Path | None) -> list[str]:
    """The keys in a file of keys (one a line, or comma-separated; ``#`` comments), none without a file."""
    if path is None:
        return []
    try:
        return parse_keys(path.read_text())
    except (OSError, UnicodeError) as exc:
        raise AccessError(f"cannot read the API keys file {path}: {first_line(exc)}") from None


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_access(*, keys: list[str], open_: bool, host: str) -> None:
    """Refuse to run without a key unless explicitly open, and open only on a loopback host."""
    if open_ and not is_loopback(host):
        raise AccessError(f"open mode (no API key) is allowed on a loopback host only (127.0.0.1, ::1, "
                          f"localhost), not {host!r}; set CHURNCLV_API_KEYS or --api-keys-file instead")
    if not open_ and not keys:
        raise AccessError("no API key configured: set CHURNCLV_API_KEYS=<key>[,<key>...] or pass --api-keys-file "
                          "FILE (one key a line); or pass --open to serve without keys on 127.0.0.1")


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def matching_key(access: Access, scope: Scope) -> int | None:
    """The index of the key the Bearer token equals (compared in constant time against every key), or None."""
    scheme, _, token = (header(scope, b"authorization") or b"").partition(b" ")
    token = token.strip()
    found = None
    for index, key in enumerate(access.keys):
        if hmac.compare_digest(key, token):
            found = index
    return found if scheme.lower() == b"bearer" else None


def authorised(access: Access, scope: Scope) -> bool:
    """Bearer token equal to one of the keys, compared in constant time against every key."""
    return matching_key(access, scope) is not None


def caller(scope: Scope) -> Identity:
    """Who sent the request (set by :class:`Guard`): the audit trail's ``who``."""
    return (scope.get("state") or {}).get("churnclv_identity") or Identity("unknown")


def too_large(limit: int) -> str:
    return f"the request body is over the limit of {limit:,} bytes"


def size_refusal(scope: Scope, limit: int) -> tuple | None:
    """400/413 from the Content-Length header alone, when it is not a number or over ``limit``."""
    length = header(scope, b"content-length")
    if length is None:
        return None
    if not length.isdigit():
        return 400, "bad_request", "the Content-Length header is not a number"
    return (413, "body_too_large", too_large(limit)) if int(length) > limit else None


async def answer(send: Send, status: int, code: str, message: str, extra: list | None = None) -> None:
    body = error_body(code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it exceeds ``limit`` bytes (chunked bodies too).
    The caller bounds the time it may take (:attr:`Access.body_seconds`)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then defers to the real one."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def normalising(send: Send) -> Send:
    """A ``send`` that passes successes through and rewrites error bodies into our format."""
    held: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held.update(start=message, body=[])
            return
        if "start" not in held or message["type"] != "http.response.body":
            await send(message)
            return
        held["body"].append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, body = normalise(held["start"]["status"], b"".join(held["body"]))
        headers = [(k, v) for k, v in held["start"].get("headers", []) if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({**held["start"], "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


class Guard:
    """ASGI middleware: API keys, body size cap, JSON-only bodies, one error format.

    ``access`` is the :class:`Access`, or a function that returns it when the app is built (the service
    passes the one it read at start, so that the settings and the key file are read once per process).
    """

    def __init__(self, app: Callable, access: Access | Callable[[], Access]):
        self.app = app
        self.access = access() if callable(access) else access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if not public and (refusal := self._refusal(scope)) is not None:
            return await answer(send, *refusal)
        limit = self.access.max_body_bytes
        if (refusal := size_refusal(scope, limit)) is not None:
            return await answer(send, *refusal)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            media = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
            if not public and media not in JSON_TYPES:
                return await answer(send, 415, "unsupported_media_type", "send the body as application/json")
            try:
                async with asyncio.timeout(self.access.body_seconds):
                    body = await read_body(receive, limit)
            except TimeoutError:
                return await answer(send, 408, "request_timeout", f"the request body was not complete within "
                                    f"{self.access.body_seconds:g} seconds", [(b"connection", b"close")])
            if body is None:
                return await answer(send, 413, "body_too_large", too_large(limit))
            receive = replay(body, receive)
        await self.app(scope, receive, normalising(send))

    def _refusal(self, scope: Scope) -> tuple | None:
        if self.access.keys:
            limits, address = self.access.limits, (scope.get("client") or ("",))[0]
            if limits is not None and (locked := limits.locked_out(address)) is not None:
                return too_many(locked, f"too many failed authentications from {address} ({limits.failures})")
            index = matching_key(self.access, scope)
            if index is None:
                count_refusal("unauthorized")
                if limits is not None:
                    limits.failed(address)
                return (401, "unauthorized", "missing or invalid API key: send the header Authorization: Bearer <key>",
                        [(b"www-authenticate", b"Bearer")])
            identity = self.access.identity(index)
            if limits is not None and (over := limits.over(identity.name)) is not None:
                return too_many(over, f"the key {identity.name!r} is over its limit of {limits.per_key}")
            needed = required_role(scope["method"], scope["path"])
            if not allows(identity, needed):
                return (403, "forbidden", f"the key {identity.name!r} has the role {identity.role!r}; "
                        f"{scope['method']} {scope['path']} needs {needed!r}")
            scope.setdefault("state", {})["churnclv_identity"] = identity
            return None
        client = (scope.get("client") or ("",))[0]
        if self.access.open and (is_loopback(client) or not _is_ip(client)):
            scope.setdefault("state", {})["churnclv_identity"] = Identity("open (loopback)")
            return None
        return 403, "forbidden", "this server runs without API keys and answers loopback clients only"


def too_many(refusal: Refusal, what: str) -> tuple:
    """429 with ``Retry-After``, counted in /metrics by reason."""
    count_refusal(refusal.reason)
    return (429, refusal.reason, f"{what}; retry after {refusal.retry_after} s",
            [(b"retry-after", str(refusal.retry_after).encode())])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
