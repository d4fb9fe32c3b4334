"""API keys for the scoring API: a pure ASGI middleware in front of `/v1/score` and `/v1/feedback`.

Keys are never stored, only their SHA-256 hashes, one per line as `sha256:<64 hex>` (text after the hash
names the key, `#` starts a comment), in a file (`ifd serve --api-keys FILE` or `IFD_API_KEYS_FILE`)
and/or in `IFD_API_KEY_HASHES` (comma-separated). `ifd serve --hash-key` turns a key read from stdin
into its line. A client sends the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`:

- no key: 401 (with `WWW-Authenticate: Bearer`); a key that matches no hash: 403;
- the presented key is hashed and compared with every stored hash by `hmac.compare_digest`, all of them,
  so the time taken does not depend on which hash (if any) matched or how much of it did;
- `/healthz` and `/metrics` stay open (probes and scrapers carry no key); every other path, `/v1/score`,
  `/v1/feedback` and any added later, needs a key (closed unless listed open);
- the file is read again when its modification time or size changes (rotate keys without a restart); a
  file that has become unreadable or malformed refuses every protected request with 503 until fixed
  (fail closed), and says why.

SHA-256 without a salt is enough for keys made by `secrets.token_urlsafe(32)` (256 random bits); it is
not meant for passwords a person chose.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ifd.errors import IfdError
from ifd.serving.body_limit import ASGIApp, Receive, Scope, Send, send_json

LOG = logging.getLogger("ifd.serving")
OPEN_PATHS = ("/healthz", "/metrics")
_LINE = re.compile(r"^sha256:(?P<hex>[0-9a-fA-F]{64})(?:\s+(?P<name>.*))?$")


class ApiKeysError(IfdError):
    """The API key file or hashes cannot be used; the message names the file and line."""

    exit_code = 2


def hash_key(key: str) -> str:
    """The line to store for `key`: `sha256:<hex digest of its UTF-8 bytes>`."""
    key = key.strip()
    if not key:
        raise ApiKeysError("an API key must not be empty")
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_hashes(lines: Iterable[str], where: str) -> list[bytes]:
    """The digests in `lines` (blank lines and `#` comments skipped); ApiKeysError names a bad line."""
    out = []
    for no, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            raise ApiKeysError(f"{where} line {no}: expected 'sha256:<64 hex digits> [name]' (make one with `ifd serve --hash-key`)")
        out.append(bytes.fromhex(m.group("hex")))
    return out


@dataclass
class ApiKeys:
    """The accepted key hashes: those of `env_hashes` plus those of `file`, the file re-read when it changes."""

    file: Path | None = None
    env_hashes: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._static = parse_hashes(self.env_hashes, "IFD_API_KEY_HASHES")
        self._stamp: tuple[int, int] | None = None
        self._from_file: list[bytes] = []
        self.problem: str | None = None
        self._reload()
        if self.problem is not None:
            raise ApiKeysError(self.problem)
        if not self.digests():
            raise ApiKeysError(f"no API key hashes in {self.file or 'IFD_API_KEY_HASHES'}; add one made by `ifd serve --hash-key`")

    def _reload(self) -> None:
        if self.file is None:
            return
        try:
            st = self.file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            self._from_file = parse_hashes(self.file.read_text().splitlines(), str(self.file))
            self._stamp, self.problem = stamp, None
        except (OSError, UnicodeDecodeError) as exc:
            self._stamp, self._from_file = None, []
            self.problem = f"API key file {self.file} cannot be read ({exc.__class__.__name__}: {exc})"
        except ApiKeysError as exc:
            self._stamp, self._from_file = None, []
            self.problem = str(exc)
        if self.problem is not None:
            LOG.error("%s; refusing every key until it is fixed", self.problem)

    def digests(self) -> list[bytes]:
        return [*self._static, *self._from_file]

    def check(self, presented: str) -> bool:
        """True when `presented` hashes to one of the accepted digests (constant time over all of them)."""
        self._reload()
        digest = hashlib.sha256(presented.encode()).digest()
        found = False
        for known in self.digests():
            found |= hmac.compare_digest(digest, known)
        return found


def api_keys_from(file: str | Path | None, hashes: str | Sequence[str] | None) -> ApiKeys | None:
    """The configured keys, or None when neither a file nor hashes are given (the API is then open)."""
    if isinstance(hashes, str):
        hashes = [h for h in hashes.split(",") if h.strip()]
    if not file and not hashes:
        return None
    return ApiKeys(Path(file).expanduser() if file else None, tuple(h.strip() for h in hashes or ()))


def api_keys_from_env(env: dict[str, str] | None = None) -> ApiKeys | None:
    env = dict(os.environ) if env is None else env
    return api_keys_from(env.get("IFD_API_KEYS_FILE") or None, env.get("IFD_API_KEY_HASHES") or None)


def _presented(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        name = name.lower()
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class ApiKeyAuth:
    """401 without a key, 403 with a wrong one, on every path but `open_paths`."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, open_paths: Sequence[str] = OPEN_PATHS,
                 on_refuse: Callable[[str, int], None] | None = None) -> None:
        """`on_refuse(path, status)` is told of each request refused here."""
        self.app = app
        self.keys = keys
        self.open_paths = tuple(open_paths)
        self.on_refuse = on_refuse

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if self.on_refuse is not None:
            self.on_refuse(scope.get("path", ""), status)
        await send_json(send, status, detail, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        key = _presented(scope)
        if key is None:
            await self._refuse(scope, send, 401, "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                               [(b"www-authenticate", b'Bearer realm="ifd"')])
            return
        ok = self.keys.check(key)
        if self.keys.problem is not None:
            await self._refuse(scope, send, 503, f"the server's API keys are unusable: {self.keys.problem}")
            return
        if not ok:
            await self._refuse(scope, send, 403, "this API key is not accepted")
            return
        await self.app(scope, receive, send)
