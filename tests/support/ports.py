"""A free loopback TCP port, for servers whose port must be known before they start.

Prefer binding port 0 and reading the port back; this is for configs written ahead
(subprocesses, fixed worker ports, a server restarted on the same port).
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
