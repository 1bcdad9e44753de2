"""Open WebUI in a simulated container: one small page and its health check, enough to prove a forward
reaches it."""

from __future__ import annotations

from aiohttp import web


async def start_webui() -> tuple[web.AppRunner, int]:
    """Open WebUI stands in as one small page: enough to prove the forward reaches it."""
    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>Open WebUI</title><p>Open WebUI (simulated)</p>",
                            content_type="text/html")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": True})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]
