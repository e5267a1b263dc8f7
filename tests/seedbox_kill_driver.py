"""Run one relocation in its own process and SIGKILL it right after qBittorrent's move.

Usage: python tests/seedbox_kill_driver.py SPEC.json

SPEC: {"config": <Config as a dict>, "fill": <file to write on the Synology>,
"leave_free": <bytes>, "kill_at": "set_location" | "verified"}.

- `set_location` (default): just before the first setLocation the driver fills the
  Synology filesystem (when `fill` is given) until only `leave_free` bytes are free (the
  disk fills up during the move, after every pre-check passed); once qBittorrent is no
  longer `moving` the process kills itself with SIGKILL, before the relocator can ask for
  a recheck or repair anything.
- `verified`: SIGKILL right after the journal recorded a successful recheck at the
  destination, before the mapping is written.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any


def fill_until(path: Path, leave_free: int) -> None:
    """Write zeros to `path` until its filesystem has about `leave_free` bytes left."""
    with path.open("wb") as fh:
        while True:
            free = shutil.disk_usage(path.parent).free
            chunk = min(1 << 20, free - leave_free)
            if chunk <= 0:
                break
            try:
                fh.write(b"\0" * chunk)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                break


async def main(spec: dict[str, Any]) -> None:
    from integrations.qbittorrent import QbitClient
    from rush.config import Config
    from rush.seedbox.service import relocate
    from rush.storage import close_db, init_db

    config = Config.model_validate(spec["config"])
    real_set_location = QbitClient.set_location

    async def set_location_then_die(self: QbitClient, infohash: str, location: str) -> None:
        if spec.get("fill"):
            fill_until(Path(spec["fill"]), int(spec["leave_free"]))
        await real_set_location(self, infohash, location)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = await self.torrent(infohash)
            if (
                view is not None
                and view.state != "moving"
                and view.save_path.rstrip("/") == location
            ):
                break
            await asyncio.sleep(0.1)
        print("set_location done: SIGKILL", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if spec.get("kill_at", "set_location") == "set_location":
        QbitClient.set_location = set_location_then_die  # type: ignore[method-assign]
    else:
        from rush.seedbox import moves

        real_set_phase = moves.set_phase

        async def set_phase_then_die(move: Any, phase: str, error: str | None = None) -> None:
            await real_set_phase(move, phase, error)
            if phase == "verified":
                print("verified: SIGKILL", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

        moves.set_phase = set_phase_then_die  # type: ignore[assignment]
    await init_db(config.database_url())
    try:
        await relocate(config)
    finally:
        await close_db()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
