"""``/healthz`` (200 only while everything the gateway needs works, 503 with the reasons otherwise) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.api.context import ApiContext, get_context

router = APIRouter()


@router.get("/healthz")
async def healthz(context: ApiContext = Depends(get_context)) -> JSONResponse:
    problems = context.health()
    if problems:
        return JSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok", "problems": []})


@router.get("/metrics")
async def metrics(context: ApiContext = Depends(get_context)) -> Response:
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
