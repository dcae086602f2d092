"""Command line: ``python -m textsecure demo``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textsecure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser(
        "demo",
        help="three parties talk through SQLite stores; a new process continues the conversation",
    )
    where = demo_parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir",
        metavar="DIR",
        help="keep the database in DIR (new or empty) instead of a temporary directory",
    )
    where.add_argument(
        "--continue",
        dest="continue_dir",
        metavar="DIR",
        help="the restart step: open DIR's database in this new process and carry on",
    )
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from textsecure import demo

        try:
            if args.continue_dir is not None:
                demo.continue_after_restart(args.continue_dir)
            else:
                demo.run(directory=args.dir)
        except (FileNotFoundError, FileExistsError) as e:
            demo_parser.error(str(e))
    elif args.command == "version":
        import textsecure

        print(textsecure.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
