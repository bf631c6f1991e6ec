"""A worker process of the service (granian's, through `app_from_env`) moves what its start
made out of the cyclic collector's generations (`gc.freeze`), so that its collections stop
walking the modules, routes and pools again and again; an app built for a test does not."""

from __future__ import annotations

import gc

from litestar.testing import TestClient

from app.asgi import create_app
from app.settings import Settings


def test_a_served_app_freezes_what_its_start_made(settings: Settings) -> None:
    gc.unfreeze()
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, freeze_after_start=True)) as client:
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # the modules, the routes, the context
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()  # this process goes on running other tests
