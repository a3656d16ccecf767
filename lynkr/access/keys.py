"""Client keys and the admin key: loading, ids, and the constant-time check.

A key is configured as ``key`` or ``name=key`` (``LYNKR_API_KEYS``, comma-separated, or
``LYNKR_API_KEYS_FILE``, one per line). Its *id* is the name when given, else ``key_`` and the first
12 hex digits of its SHA-256: stable across restarts and instances, safe to log, store and show;
the key itself is never stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lynkr.config import Settings
from lynkr.errors import ConfigError

ANONYMOUS = "anonymous"  # the id requests get when no client keys are configured (local mode)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ClientKey:
    id: str
    digest: bytes


def parse_keys(text: str, *, separator: str, source: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for raw in text.split(separator):
        item = raw.split("#", 1)[0].strip() if separator == "\n" else raw.strip()
        if not item:
            continue
        name, sep, key = item.partition("=")
        if not sep:
            name, key = "", item
        name, key = name.strip(), key.strip()
        if len(key) < 8:
            raise ConfigError(f"{source}: a client key must be at least 8 characters")
        if name and not all(c.isalnum() or c in "-_." for c in name):
            raise ConfigError(f"{source}: key name {name!r} may use letters, digits, - _ . only")
        out.append((name or None, key))
    return out


class KeyRing:
    """The configured keys, indexed by SHA-256 digest."""

    def __init__(self, keys: list[tuple[str | None, str]], admin_key: str | None) -> None:
        self._by_digest: dict[bytes, ClientKey] = {}
        for name, key in keys:
            ck = ClientKey(name or key_id(key), digest(key))
            if any(other.id == ck.id for other in self._by_digest.values()):
                raise ConfigError(f"two client keys share the id {ck.id!r}; give them distinct names")
            self._by_digest[ck.digest] = ck
        self._admin = digest(admin_key) if admin_key else None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: list[tuple[str | None, str]] = []
        if settings.lynkr_api_keys is not None:
            keys += parse_keys(settings.lynkr_api_keys.get_secret_value(), separator=",", source="LYNKR_API_KEYS")
        if settings.lynkr_api_keys_file is not None:
            path = Path(settings.lynkr_api_keys_file).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"LYNKR_API_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
            keys += parse_keys(text, separator="\n", source=str(path))
        admin = settings.lynkr_admin_key.get_secret_value() if settings.lynkr_admin_key else None
        return cls(keys, admin)

    @property
    def enabled(self) -> bool:
        """Whether client keys are required on model endpoints."""
        return bool(self._by_digest)

    @property
    def admin_enabled(self) -> bool:
        return self._admin is not None

    @property
    def ids(self) -> list[str]:
        return sorted(k.id for k in self._by_digest.values())

    def client(self, presented: list[str]) -> ClientKey | None:
        """The client key among ``presented``, or None. The lookup is on the SHA-256 (so nothing about the
        configured keys leaks through timing) and the match is confirmed with ``hmac.compare_digest``."""
        for key in presented:
            d = digest(key)
            found = self._by_digest.get(d)
            if found is not None and hmac.compare_digest(found.digest, d):
                return found
        return None

    def is_admin(self, presented: list[str]) -> bool:
        if self._admin is None:
            return False
        return any(hmac.compare_digest(self._admin, digest(key)) for key in presented)


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """The keys a request carries: ``x-api-key`` (Anthropic's SDKs, Claude Code's ANTHROPIC_API_KEY),
    ``Authorization: Bearer`` (OpenAI's SDKs, Codex, Cursor, Claude Code's ANTHROPIC_AUTH_TOKEN) or HTTP
    Basic's password (browsers, for the dashboard). A client may send more than one; any may match."""
    out: list[str] = []
    if key := headers.get("x-api-key", "").strip():
        out.append(key)
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        out.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return out
        if password := decoded.partition(":")[2]:
            out.append(password)
    return out
