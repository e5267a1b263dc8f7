"""`rush agents list|set|remove`: see registered agents, set one's quota and priorities,
forget one that is gone for good.

`set` stores the operator's quota limit and job-type priorities in the database (they
outlive the agent's re-registrations and the server's restarts) and asks the running
server (`cmd/agents/refresh`) to push the new parameters at once; without a server the
next `rush serve` pushes them at its start.

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
    st = inner.add_parser("set", help="set an agent's quota and job-type priorities")
    common(st)
    st.add_argument("agent_id")
    st.add_argument("--quota", type=int, help="most jobs at once (>= 1)")
    st.add_argument(
        "--priorities",
        help="job types in order, comma-separated (process_for_review,transcription,…)",
    )
    st.add_argument("--clear", action="store_true", help="back to the server's defaults")
    st.set_defaults(func=run_set)
    rm = inner.add_parser("remove", help="forget an agent (its Home Assistant entity goes too)")
    common(rm)
    rm.add_argument("agent_id")
    rm.add_argument("--force", action="store_true", help="even if online or holding leases")
    rm.set_defaults(func=run_remove)


def run_list(_args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    result = run_async(_list(config))
    return result if isinstance(result, int) else 0


def run_set(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.jobs import JobType

    priorities = None
    if args.priorities is not None:
        names = [p.strip() for p in args.priorities.split(",") if p.strip()]
        known = {t.value for t in JobType}
        bad = [n for n in names if n not in known]
        if bad or not names:
            print(
                f"rush: unknown job type(s) {', '.join(bad) or '(none given)'}; "
                f"choose from {', '.join(sorted(known))}"
            )
            return 2
        priorities = names
    if args.quota is not None and args.quota < 1:
        print("rush: --quota must be at least 1")
        return 2
    if args.quota is None and priorities is None and not args.clear:
        print("rush: nothing to set (--quota, --priorities or --clear)")
        return 2
    result = run_async(_set(config, args.agent_id, args.quota, priorities, args.clear))
    return result if isinstance(result, int) else 0


async def _set(
    config: Config, agent_id: str, quota: int | None, priorities: list[str] | None, clear: bool
) -> int:
    from rush import leasing
    from rush.storage import open_db

    async with open_db(config.database_url()):
        stored = await leasing.set_operator_params(
            agent_id, quota=quota, priorities=priorities, clear=clear
        )
        if stored is None:
            print(f"rush: no agent {agent_id!r}")
            return 1
        params = leasing.params_for(stored, leasing.LeaseSettings.from_config(config))
    print(f"agent {agent_id}: quota {params['quota']}, priorities {','.join(params['priorities'])}")
    pushed = await _ask_server_to_push(config, agent_id)
    if pushed:
        print("the server was asked to send the new parameters now")
    else:
        print(
            f"warning: the broker was not reachable ({pushed.error}); rush serve sends the "
            "new parameters at its next start"
        )
    return 0


class _Pushed:
    def __init__(self, error: str = "") -> None:
        self.error = error

    def __bool__(self) -> bool:
        return not self.error


async def _ask_server_to_push(config: Config, agent_id: str) -> _Pushed:
    """`cmd/agents/refresh` for this agent: the running server recomputes its parameters
    with its own settings (those of its environment, not ours) and publishes them."""
    import asyncio

    import aiomqtt

    from integrations.mqtt.client import make_client
    from integrations.mqtt.payloads import encode
    from integrations.mqtt.topics import Topics

    host, port = config.mqtt.broker_address()
    topic = Topics(config.mqtt.prefix).cmd("agents/refresh")
    try:
        async with asyncio.timeout(10):
            async with make_client(config.mqtt, host=host, port=port) as client:
                await client.publish(topic, encode({"agent": agent_id}), qos=1)
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return _Pushed(str(exc) or type(exc).__name__)
    return _Pushed()


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
        params = a.params or {}
        limit = params.get("quota_limit")
        prios = params.get("operator_priorities")
        quota = f"{params.get('quota', '?')}" + (f" (set: {limit})" if limit else "")
        order = ",".join(str(p) for p in params.get("priorities", []))
        print(f"    quota {quota}, priorities {order}" + (" (set)" if prios else ""))
        kinds = (a.capabilities or {}).get("process_for_review", {})
        if isinstance(kinds, dict) and isinstance(kinds.get("kinds"), list):
            print(f"    processes {', '.join(str(k) for k in kinds['kinds'])}")
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
