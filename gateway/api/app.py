"""The FastAPI application: JSON API, health, metrics and the dashboard, all from one :class:`ApiContext`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import __version__
from gateway.api import dashboard, health, routes
from gateway.api.context import ApiContext

STATIC = Path(__file__).parent / "static"


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Campus gateway",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.context = context
    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
