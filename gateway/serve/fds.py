"""Open files: the connection cap must fit under RLIMIT_NOFILE with room to spare.

Each client connection is one descriptor; so is each upstream connection (up to the
upstreams' `max_connections`), plus the listeners, the admin port, Redis, the audit
file and the interpreter's own. `plan()` raises the soft limit as far as the hard limit
allows and, if the cap still does not fit, lowers the cap rather than let accept()
fail with EMFILE (asyncio then stops accepting for a second, for everyone).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger("gateway.server")

# Descriptors besides client and upstream connections: listeners, admin, Redis pool,
# audit file, logs, the interpreter's own, certificate reloads (memfd).
RESERVE = 128


@dataclass(frozen=True)
class FilePlan:
    soft: int  # the soft limit to set
    max_connections: int  # the client connection cap that fits under it


def plan(max_connections: int, upstream_connections: int, soft: int, hard: int) -> FilePlan:
    need = max_connections + upstream_connections + RESERVE
    unlimited = hard == resource.RLIM_INFINITY
    new_soft = soft if soft >= need else (need if unlimited else min(need, hard))
    fits = max(1, new_soft - upstream_connections - RESERVE)
    return FilePlan(new_soft, min(max_connections, fits))


def apply(max_connections: int, upstream_connections: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit as needed; the connection cap to use."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    p = plan(max_connections, upstream_connections, soft, hard)
    if p.soft != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (p.soft, hard))
    if p.max_connections < max_connections:
        log.warning(
            "open-files limit too low for server.limits.max_connections; cap lowered",
            # `limit`: RLIMIT_NOFILE in force; `count`: the connection cap used instead.
            extra={"limit": p.soft, "count": p.max_connections},
        )
    return p.max_connections
