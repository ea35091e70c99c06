"""PNG charts of the results (matplotlib, Agg backend: no display needed).

Three files, named ``bench-*.png`` in the image directory:

- ``bench-throughput.png``: throughput workloads, one panel per durability level;
- ``bench-latency.png``: end-to-end p50/p99/p99.9 per rate at the strongest setting;
- ``bench-growth.png``: fetch latency at the end of the partition against its size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from minimq.bench.deps import require
from minimq.bench.peers.base import Durability
from minimq.bench.report import LEVEL_TITLES
from minimq.bench.results import THROUGHPUT_METRICS, Results
from minimq.bench.targets import growth_median

COLORS = {
    "MiniMQ": "#2b6cb0",
    "MiniMQ (aiohttp)": "#90cdf4",
    "NATS JetStream": "#2f855a",
    "Redis Streams": "#c53030",
}
DPI = 110


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "matplotlib")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "matplotlib")


def _grouped_bars(
    axes: Any, groups: list[str], series: dict[str, list[float]], ylabel: str
) -> None:
    width = 0.8 / max(1, len(series))
    for index, (broker, values) in enumerate(series.items()):
        positions = [group + index * width for group in range(len(groups))]
        heights = [value if math.isfinite(value) else 0.0 for value in values]
        axes.bar(positions, heights, width, label=broker, color=COLORS.get(broker))
    axes.set_xticks([group + 0.4 - width / 2 for group in range(len(groups))])
    axes.set_xticklabels(groups, fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", which="both", alpha=0.3)
    axes.legend(fontsize=8)


def _median_or_nan(results: Results, level: str, broker: str, metric: str) -> float:
    cell = results.cell(level, broker, metric)
    return cell.median if cell is not None else math.nan


def throughput_chart(results: Results, path: Path) -> bool:
    levels = [
        level
        for level in LEVEL_TITLES
        if any(
            results.cell(level, b, m.key)
            for b in results.brokers(level)
            for m in THROUGHPUT_METRICS
        )
    ]
    if not levels:
        return False
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(levels), figsize=(6 * len(levels), 4.5), squeeze=False)
    groups = [metric.title.split(". ", 1)[1] for metric in THROUGHPUT_METRICS]
    for panel, level in zip(panels[0], levels, strict=True):
        series = {
            broker: [_median_or_nan(results, level, broker, m.key) for m in THROUGHPUT_METRICS]
            for broker in results.brokers(level)
        }
        _grouped_bars(panel, groups, series, "messages / s (log)")
        panel.set_title(LEVEL_TITLES[level], fontsize=10)
        panel.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True


def latency_chart(results: Results, path: Path) -> bool:
    level = Durability.STRONGEST.value
    brokers = results.brokers(level)
    stats = (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"))
    groups = [
        f"{label} @ {rate:,}/s" for rate in results.settings.latency_rates for _k, label in stats
    ]
    series = {
        broker: [
            _median_or_nan(results, level, broker, f"latency_{rate}_{key}")
            for rate in results.settings.latency_rates
            for key, _label in stats
        ]
        for broker in brokers
    }
    if not any(math.isfinite(v) for values in series.values() for v in values):
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _grouped_bars(axes, groups, series, "ms (log)")
    axes.set_title(f"End-to-end latency, {LEVEL_TITLES[level].lower()}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True


def growth_chart(results: Results, path: Path) -> bool:
    if not results.growth:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    brokers = list(dict.fromkeys(broker for broker, _size, _stat in results.growth))
    for broker in brokers:
        sizes = sorted({size for b, size, _stat in results.growth if b == broker})
        for stat, style in (("p50", "-o"), ("p99", "--x")):
            values = [growth_median(results, broker, size, stat) for size in sizes]
            axes.plot(sizes, values, style, color=COLORS.get(broker), label=f"{broker} {stat}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("records in the partition (log)")
    axes.set_ylabel("read of the last record, ms (log)")
    axes.set_title("Cost growth: reading at the end of a growing partition", fontsize=10)
    axes.grid(which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True


def write_charts(results: Results, image_dir: Path) -> list[Path]:
    """Render every chart the results allow into ``image_dir``; return the files written."""
    image_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in (
        ("bench-throughput.png", throughput_chart),
        ("bench-latency.png", latency_chart),
        ("bench-growth.png", growth_chart),
    ):
        path = image_dir / name
        if render(results, path):
            written.append(path)
    return written
