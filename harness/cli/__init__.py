"""The ``harness`` command: run, check, data, plugins, report, release, encode, search, and after
shipping ab, interleave, drift.

``main`` maps what went wrong to the exit code (:class:`harness.exitcodes.ExitCode`): the parser is
in :mod:`harness.cli.parser`, the subcommands in :mod:`harness.cli.commands`, :mod:`harness.cli.shipping`
and (after shipping) :mod:`harness.cli.monitor`.
"""

from __future__ import annotations

import signal
import sys

from harness.cli import commands, monitor, shipping
from harness.cli.parser import parser
from harness.errors import ConfigError, DataError, HarnessError
from harness.exitcodes import ExitCode


def main(argv: list[str] | None = None) -> int:
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:
        return ExitCode.OK if e.code == 0 else ExitCode.USAGE_ERROR
    try:
        name = f"cmd_{args.command}"
        command = next(getattr(m, name) for m in (commands, shipping, monitor) if hasattr(m, name))
        return int(command(args))
    except ConfigError as e:
        return int(commands.usage_error(e))
    except DataError as e:  # a file the user gave that cannot be used: say which and why
        print(f"ERROR: {e}", file=sys.stderr)
        return int(ExitCode.USAGE_ERROR)
    except HarnessError as e:  # refused release, mixed embeddings, unreadable data
        print(f"ERROR: {e}", file=sys.stderr)
        return int(ExitCode.GATES_FAILED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception:  # noqa: BLE001 - a bug: say so, with the traceback, and exit 3
        import traceback

        traceback.print_exc()
        print("INTERNAL ERROR: this is a bug in the harness or a plugin", file=sys.stderr)
        return int(ExitCode.INTERNAL_ERROR)
