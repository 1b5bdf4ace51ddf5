"""HTTP API and dashboard, served by the gateway (FastAPI on uvicorn, in the gateway's event loop)."""
