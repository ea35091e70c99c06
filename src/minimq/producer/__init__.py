"""Simulated sensor producers: ``minimq producer`` / ``python -m minimq.producer``."""

from minimq.producer.config import SimulatorConfig
from minimq.producer.simulator import run

__all__ = ["SimulatorConfig", "run"]
