"""The agent's memory: a small idle footprint (heavy modules imported only when a job
needs them) and images decoded within `agent.max_memory_mb`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rush.layout import init_library
from tests.conftest import rush_env
from tests.support.broker import BROKER_HOST, BROKER_PORT

#: Modules an idle agent must not have imported: each costs megabytes of RSS for ever.
HEAVY = ("aiohttp", "PIL", "pillow_heif", "vosk", "pocketsphinx", "numpy", "rawpy", "jinja2")

_PROBE = r"""
import logging, os, signal, sys, threading

class Connected(logging.Handler):
    def emit(self, record):
        if "MQTT connected" in record.getMessage():
            def dump():
                with open(sys.argv[1], "w") as fh:
                    fh.write("\n".join(sorted(sys.modules)))
                os.kill(os.getpid(), signal.SIGTERM)
            threading.Timer(1.0, dump).start()

logging.getLogger("integrations.mqtt.client").addHandler(Connected())
from rush.cli import main
sys.exit(main(["agent", "--config", sys.argv[2]]))
"""


@pytest.mark.mqtt
def test_an_idle_agent_imports_no_heavy_module(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    init_library(library)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[mqtt]
host = "{BROKER_HOST}"
port = {BROKER_PORT}
prefix = "rush-idle-{uuid.uuid4().hex[:8]}"
[agent]
library_mount = "{library}"
""",
        encoding="utf-8",
    )
    out = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), str(config)],
        env=rush_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), proc.stderr.decode(errors="replace")[-3000:]
    loaded = set(out.read_text().split())
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], json.dumps(heavy)


def write_big_png(path: Path, width: int, height: int) -> None:
    """An RGB PNG of any size written row by row (a few MB on disk, little memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    comp = zlib.compressobj(9)
    row = b"\0" + bytes(range(256)) * (width * 3 // 256) + b"\0" * (width * 3 % 256)
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for _ in range(height):
            data = comp.compress(row)
            if data:
                fh.write(chunk(b"IDAT", data))
        fh.write(chunk(b"IDAT", comp.flush()))
        fh.write(chunk(b"IEND", b""))


def test_an_image_too_big_for_the_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    from integrations import photo
    from rush.jobs import JobFailed

    png = tmp_path / "big.png"
    write_big_png(png, 5000, 5000)  # 25 MP: 100 MB decoded, over a 128 MB agent's 64 MB
    photo.set_memory_budget(128)
    try:
        with pytest.raises(JobFailed, match=r"5000x5000 PNG .*agent.max_memory_mb = 128"):
            photo.photo_thumbnails(png, [320, 1600])
        # Facts need no decoding: the dimensions are still known.
        assert photo.photo_facts(png)["width"] == 5000
        # A 24 MP JPEG is decoded at a reduced scale and fits the same budget.
        from PIL import Image

        jpeg = tmp_path / "big.jpg"
        Image.new("RGB", (6000, 4000), (200, 30, 90)).save(jpeg, quality=80)
        thumbs = photo.photo_thumbnails(jpeg, [320, 1600])
        assert [size for size, _ in thumbs] == [320, 1600]
        with Image.open(io.BytesIO(thumbs[1][1])) as big:
            assert big.size == (1600, 1067)
        # Pillow's bomb guard follows the budget too.
        assert Image.MAX_IMAGE_PIXELS == 128 * (1 << 20) // 2 // 4 * 64 // 2
    finally:
        photo.set_memory_budget(768)


def test_max_memory_mb_is_a_typed_agent_setting(tmp_path: Path) -> None:
    from rush.config import Config, ConfigError, load_config

    assert Config().agent.max_memory_mb == 768
    path = tmp_path / "c.toml"
    path.write_text("[agent]\nmax_memory_mb = 1536\n", encoding="utf-8")
    assert load_config(path, environ={}).agent.max_memory_mb == 1536
    path.write_text("[agent]\nmax_memory_mb = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path, environ={})


def test_facts_of_an_image_too_big_to_decode_do_not_decode_it(tmp_path: Path) -> None:
    from PIL import Image

    from integrations import photo

    png = tmp_path / "big.png"
    write_big_png(png, 5000, 5000)
    photo.set_memory_budget(128)
    loads: list[str] = []
    original = Image.Image.load

    def spy(self: Image.Image) -> object:
        if self.size == (5000, 5000):
            loads.append(str(self.format))
        return original(self)

    Image.Image.load = spy  # type: ignore[method-assign]
    try:
        facts = photo.photo_facts(png)
    finally:
        Image.Image.load = original  # type: ignore[method-assign]
        photo.set_memory_budget(768)
    assert (facts["width"], facts["height"]) == (5000, 5000)
    assert loads == []


@pytest.mark.mqtt
async def test_an_agent_that_starts_before_the_server_registers_again(
    db: str, tmp_path: Path
) -> None:
    """A lean agent is connected before a starting server subscribes: the registration it
    sent then is lost, so it sends it again until the server answers with parameters."""
    import asyncio

    from integrations.agent_runtime import AgentRuntime
    from tests.agent_support import (
        TestProcessor,
        agents_running,
        make_config,
        make_library,
        new_prefix,
        server_actors,
        wait_until,
    )

    root = tmp_path / "lib"
    make_library(root)
    config = make_config(root, prefix=new_prefix())
    runtime = AgentRuntime(config, [TestProcessor()], agent_id="early")
    async with agents_running([runtime]):
        await asyncio.wait_for(runtime.bridge.connected.wait(), 30)
        await asyncio.sleep(0.5)  # its first registration is gone: nobody listened
        async with server_actors(config):

            async def has_params() -> bool:
                return runtime.params is not None

            await wait_until(has_params, limit_s=30)
