"""`rush agents list|remove`: see registered agents, forget one that is gone for good.

Removing an agent deletes its registration; Home Assistant's entity for it is cleared
(empty retained config) by the server at its next refresh.  An online agent, or one that
still holds a lease, is refused unless `--force`: its jobs would otherwise be orphaned
until their TTL.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("agents", help="list registered agents or remove one")
    inner = parser.add_subparsers(dest="agents_command", required=True)
    ls = inner.add_parser("list", help="registered agents, online state and last contact")
    common(ls)
    ls.set_defaults(func=run_list)
    rm = inner.add_parser("remove", help="forget an agent (its Home Assistant entity goes too)")
    common(rm)
    rm.add_argument("agent_id")
    rm.add_argument("--force", action="store_true", help="even if online or holding leases")
    rm.set_defaults(func=run_remove)


def run_list(_args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    result = run_async(_list(config))
    return result if isinstance(result, int) else 0


def run_remove(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    result = run_async(_remove(config, args.agent_id, args.force))
    return result if isinstance(result, int) else 0


async def _list(config: Config) -> int:
    from rush.models import Agent
    from rush.storage import open_db

    async with open_db(config.database_url()):
        agents = await Agent.all().order_by("id")
    if not agents:
        print("no agent registered")
    for a in agents:
        seen = a.last_seen.isoformat(timespec="seconds") if a.last_seen else "never"
        state = "online" if a.online else "offline"
        print(f"{a.id:<24} {state:<8} {a.hostname:<20} v{a.version or '?':<8} last seen {seen}")
    return 0


async def _remove(config: Config, agent_id: str, force: bool) -> int:
    from rush.models import Agent, Lease
    from rush.storage import open_db

    async with open_db(config.database_url()):
        agent = await Agent.get_or_none(id=agent_id)
        if agent is None:
            print(f"rush: no agent {agent_id!r}")
            return 1
        active = await Lease.filter(agent_id=agent_id, status="active").count()
        if (agent.online or active) and not force:
            print(
                f"rush: agent {agent_id!r} is {'online' if agent.online else 'offline'} with "
                f"{active} active lease(s); stop it first or use --force"
            )
            return 3
        await agent.delete()
    print(f"agent {agent_id} removed")
    return 0
