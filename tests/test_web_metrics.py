"""/metrics: Prometheus format behind a session or the configured bearer token."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from integrations.metrics import Metrics
from rush.layout import init_library
from rush.status import collect_status
from rush.users import add_user
from tests.webutil import login, make_asset, web_config
from web.app import create_app
from web.services import default_services


async def test_metrics_need_session_or_token(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    config.web.metrics_token = SecretStr("s3cret-token")
    await add_user("alice", "correct horse")
    await make_asset(state="READY")
    metrics = Metrics()
    metrics.update_snapshot(await collect_status(config))
    app = create_app(config, default_services(config, metrics=metrics))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status == 200 and ok.headers["Content-Type"].startswith("text/plain")
        assert 'rush_assets{state="READY"} 1.0' in await ok.text()
        await login(client)
        assert (await client.get("/metrics")).status == 200
