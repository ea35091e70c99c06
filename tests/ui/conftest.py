from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from flask.testing import FlaskClient

from minimq.client import Client
from minimq.ui import create_app
from minimq.ui.broker import close_client
from tests.support.processes import BrokerProcess, free_port

CSRF = "test-csrf-token"


@pytest.fixture(scope="module")
def broker_client(shared_broker: BrokerProcess) -> Iterator[Client]:
    with Client(shared_broker.url) as client:
        yield client


@contextmanager
def ui_app(broker_url: str) -> Iterator[Flask]:
    """The UI for ``broker_url``; its broker connections are closed afterwards."""
    app = create_app(broker_url, secret_key="test")
    try:
        yield app
    finally:
        close_client(app)


def with_csrf(app: Flask) -> FlaskClient:
    """A test client whose session holds a known CSRF token (send ``csrf_token=CSRF``)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = CSRF
    return client


@pytest.fixture
def web(shared_broker: BrokerProcess) -> Iterator[FlaskClient]:
    with ui_app(shared_broker.url) as app:
        yield with_csrf(app)


@pytest.fixture
def down_web() -> Iterator[FlaskClient]:
    """A UI whose broker is a closed port: every broker call fails as unavailable."""
    with ui_app(f"http://127.0.0.1:{free_port()}") as app:
        yield with_csrf(app)
