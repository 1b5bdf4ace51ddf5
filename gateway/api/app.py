"""The FastAPI application: JSON API, health, metrics and the dashboard, all from one :class:`ApiContext`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import __version__
from gateway.api import dashboard, health, routes
from gateway.api.context import ApiContext, require_reader

STATIC = Path(__file__).parent / "static"


def create_app(context: ApiContext) -> FastAPI:
    # No built-in docs pages: they load Swagger UI from a CDN, which the box may not reach, and they are served to
    # anyone. The schema itself is served like every other read: with the token or a dashboard session.
    app = FastAPI(title="Campus gateway", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=[Depends(require_reader)])
    async def openapi_schema() -> dict[str, Any]:
        return app.openapi()

    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
