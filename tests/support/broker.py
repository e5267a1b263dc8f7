"""The shared Mosquitto that the suite talks to, like RUSH_TEST_PG for PostgreSQL.

RUSH_TEST_MQTT=host:port (default 127.0.0.1:1883, anonymous).  Every test that uses it
picks a random topic prefix, so tests, workers and parallel sessions never see each
other's messages.  Tests that need a broker of their own (shipped ACL, a broker that
stops) start a private one instead (tests/agent_support.py).
"""

from __future__ import annotations

import os


def _parse(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"RUSH_TEST_MQTT must be host:port, not {value!r}")
    return host, int(port)


BROKER_HOST, BROKER_PORT = _parse(os.environ.get("RUSH_TEST_MQTT", "127.0.0.1:1883"))
