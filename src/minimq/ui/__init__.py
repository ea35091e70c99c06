"""The MiniMQ web UI: a Flask application talking to the broker through :mod:`minimq.client`."""

from minimq.ui.app import create_app

__all__ = ["create_app"]
