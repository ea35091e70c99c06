"""Run the consumer-group churn checker: both modes, one after the other.

    python -m bench.churn [--seconds 150] [--seed 1] [--mode commit-true|explicit]
                          [--session-timeout-ms 2000] [--gateways 2] [--keep DIR]
    python -m bench.churn --recheck DIR    # judge the histories of an earlier run again

``--gateways N`` runs each mode over N gateways on a real 3-node JetStream
cluster (``nats-server`` must be installed), members spread over them;
without it, over one broker on a disk data directory.

Exit status 0 when every check of every mode passed.  The histories are
kept (and their directory printed) when a check failed or ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.churn.checker import ChurnReport, RunHistory, check_run
from bench.churn.driver import ChurnSettings, run_churn
from bench.churn.member import MODES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="churn time per mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=MODES, action="append", help="default: both")
    parser.add_argument("--session-timeout-ms", type=int, default=2000)
    parser.add_argument("--records-per-second", type=float, default=100.0)
    parser.add_argument(
        "--gateways",
        type=int,
        default=0,
        help="gateways over a 3-node JetStream cluster (default 0: one disk broker)",
    )
    parser.add_argument("--keep", type=Path, help="write the histories here and keep them")
    parser.add_argument("--recheck", type=Path, help="judge the histories in this directory")
    args = parser.parse_args(argv)
    modes = args.mode or list(MODES)
    if args.recheck:
        reports = [check_run(RunHistory.load(args.recheck / mode, mode)) for mode in modes]
        return _print(reports)
    out = args.keep or Path(tempfile.mkdtemp(prefix="minimq-churn-"))
    reports = []
    for mode in modes:
        settings = ChurnSettings(
            mode=mode,
            seconds=args.seconds,
            seed=args.seed,
            session_timeout_ms=args.session_timeout_ms,
            records_per_second=args.records_per_second,
            gateways=args.gateways,
        )
        where = f"{args.gateways} gateways" if args.gateways else "one disk broker"
        print(
            f"mode {mode}: churning for {args.seconds:g}s over {where} (seed {args.seed}) ...",
            flush=True,
        )
        report = run_churn(out / mode, settings)
        print(report.summary(), flush=True)
        reports.append(report)
    ok = all(report.ok for report in reports)
    if ok and not args.keep:
        shutil.rmtree(out)
    else:
        print(f"histories kept in {out}")
    return 0 if ok else 1


def _print(reports: list[ChurnReport]) -> int:
    for report in reports:
        print(report.summary())
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
