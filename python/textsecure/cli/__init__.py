"""The ``textsecure`` command (``python -m textsecure``): ``inspect``, ``fingerprint``,
``account``, ``prekeys``, ``bench``, ``demo`` and ``version``. See ``docs/cli.md``.

Every failure is one line on stderr, ``textsecure: error: ...``, and exit status 1 (usage
errors: argparse's message and 2); never a traceback (``TEXTSECURE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys

from textsecure import errors
from textsecure.cli import _accounts, _bench, _fingerprint, _inspect
from textsecure.cli._common import CliError

__all__ = ["CliError", "build_parser", "main"]

PROG = "textsecure"


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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

    def run(args: argparse.Namespace) -> int:
        from textsecure import demo

        try:
            if args.continue_dir is not None:
                demo.continue_after_restart(args.continue_dir)
            else:
                demo.run(directory=args.dir)
        except (FileNotFoundError, FileExistsError) as e:
            demo_parser.error(str(e))
        return 0

    demo_parser.set_defaults(run=run)


def _version(args: argparse.Namespace) -> int:
    import textsecure

    print(textsecure.__version__)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The Signal protocol from the command line: decode messages and records, "
        "safety numbers, accounts and prekeys of a SQLite store, benchmarks, a demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _inspect.add_parser(sub)
    _fingerprint.add_parser(sub)
    _accounts.add_parsers(sub)
    _bench.add_parser(sub)
    _add_demo(sub)
    sub.add_parser("version", help="print the version").set_defaults(run=_version)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"


def _describe(e: BaseException) -> str:
    if isinstance(e, CliError):
        return str(e)
    if isinstance(e, errors.TextSecureError):
        return f"{type(e).__name__}: {e}"
    if isinstance(e, OSError):
        what = e.strerror or str(e)
        return f"{what}: {e.filename!r}" if e.filename is not None else what
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {_one_line(message)}\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = bool(os.environ.get("TEXTSECURE_DEBUG"))
    try:
        status: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush of
        # stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except (CliError, errors.TextSecureError, OSError, ValueError) as e:
        if debug:
            raise
        return _fail(_describe(e))
    except Exception as e:  # a bug: still one line, with how to see more
        if debug:
            raise
        return _fail(
            f"internal error: {_describe(e)} (TEXTSECURE_DEBUG=1 shows the traceback; "
            "please report it)"
        )
    return status
