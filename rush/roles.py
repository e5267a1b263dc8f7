"""Web UI roles: who may look, who may decide, who may move and delete files.

- `viewer`: reads every page;
- `reviewer`: also decides, tags, edits fields, links audio, manages bins, exports a
  bin, reopens an asset and runs dry runs (plans change nothing);
- `admin`: also runs batch applies and purges, reprocesses and retries processing
  (and manages users and agents, which only the command line does today).

Pure: no I/O.  The web UI maps each state-changing route to a role (web/roles.py).
"""

from __future__ import annotations

ROLES = ("viewer", "reviewer", "admin")
DEFAULT_ROLE = "admin"  # what `rush user add` gives without --role (as before roles)


class UnknownRole(ValueError):
    pass


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    return role


def allows(role: str | None, needed: str) -> bool:
    """Whether `role` may do what needs `needed`; an unknown role may do nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)
