"""Command line: ``python -m textsecure demo``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textsecure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="two parties talk in-process and print the conversation")
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from textsecure import demo

        demo.run()
    elif args.command == "version":
        import textsecure

        print(textsecure.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
