"""The ``tinymeta`` command (also ``python -m tinymeta``)."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinymeta", description="Gradient-based meta-learning from scratch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="derivatives of order 1-3 and a MAML meta-gradient next to finite differences")
    demo.set_defaults(func=lambda args: __import__("tinymeta.demo", fromlist=["main"]).main(args))

    bench = sub.add_parser("bench", help="benchmarks: meta-gradient phases, task sampling")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: $TINYMETA_DEVICE or cpu)")
    bench.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median reported)")
    bench.add_argument("--only", choices=["engine", "tasks"], help="run one group only")
    bench.add_argument("--quick", action="store_true", help="skip the slow Omniglot conv-net timing")
    bench.add_argument("--data-dir", default=None, help="Omniglot folder (default: $TINYMETA_DATA, ./data/omniglot)")
    bench.set_defaults(func=lambda args: __import__("tinymeta.bench", fromlist=["main"]).main(args))

    try:
        from . import cli_data  # noqa: PLC0415
    except ImportError:
        pass
    else:
        cli_data.add_subcommands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
