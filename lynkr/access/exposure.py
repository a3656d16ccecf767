"""Who can reach lynkr: bind safety at startup.

With no client keys, lynkr serves anyone who can connect, so it binds loopback only. Binding another
address without keys needs an explicit ``--allow-unauthenticated`` (``LYNKR_ALLOW_UNAUTHENTICATED``)
and is logged as a warning.
"""

from __future__ import annotations

import ipaddress

from loguru import logger

from lynkr.access.keys import KeyRing
from lynkr.config import Settings
from lynkr.errors import ConfigError


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(settings: Settings) -> KeyRing:
    """The key ring (a bad keys file fails here, before anything starts); ConfigError when the host is
    not loopback, there are no client keys, and unauthenticated access was not allowed explicitly."""
    ring = KeyRing.from_settings(settings)
    if not ring.enabled and not is_loopback(settings.host) and not settings.lynkr_allow_unauthenticated:
        raise ConfigError(
            f"refusing to listen on {settings.host} without client keys: anyone who can reach it could use your "
            "backends. Set LYNKR_API_KEYS (or LYNKR_API_KEYS_FILE), bind 127.0.0.1, or pass "
            "--allow-unauthenticated")
    return ring


def log_exposure(settings: Settings, ring: KeyRing) -> None:
    if ring.enabled:
        logger.info("inbound auth: {} client key(s) ({}); admin endpoints {}", len(ring.ids), ", ".join(ring.ids),
                    "need LYNKR_ADMIN_KEY" if ring.admin_enabled else "are disabled (no LYNKR_ADMIN_KEY)")
    elif is_loopback(settings.host):
        logger.info("inbound auth: none (no LYNKR_API_KEYS): listening on loopback only, {}", settings.host)
    else:
        logger.warning("inbound auth: NONE on {} (--allow-unauthenticated): anyone who can reach this address can "
                       "use your backends and admin endpoints", settings.host)
