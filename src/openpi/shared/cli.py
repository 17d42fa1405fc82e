"""One exit style for every command line: a user error ends the program with one ``error: <message>`` line on
stderr and exit status 2 (the status tyro and argparse give a bad command line), never a traceback."""

from collections.abc import Callable
import re
import sys
from typing import NoReturn

# Errors a user fixes by changing an input: a missing or already existing file, a bad name or value (the
# project's own ``InputError``, ``DatasetNotFoundError`` and ``DatasetFormatError`` are among these). A
# program adds its own error types to ``run_main``; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, FileExistsError, ValueError)


def fail(message: str) -> NoReturn:
    """Ends the program with ``error: <message>`` on stderr and exit status 2."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(2)


def run_main(main: Callable[[], object], *, user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Runs a command line's ``main()`` (which parses its own arguments); a user error (``USER_ERRORS`` or one of
    ``user_errors``) ends it through ``fail`` with the error's message."""
    try:
        main()
    except (*USER_ERRORS, *user_errors) as error:
        fail(error_message(error))
    except KeyError as error:
        if not is_explained(error):
            raise
        fail(error_message(error))


def is_explained(error: KeyError) -> bool:
    """A ``KeyError`` the project raised on purpose carries a sentence naming the key and what exists (``Episode 7
    is not in ...``): that is a user error. A bare lookup's ``KeyError('x')`` is a bug and keeps its traceback."""
    text = error.args[0] if error.args else ""
    return isinstance(text, str) and " " in text.strip() and text.rstrip().endswith((".", ")"))


def error_message(error: BaseException) -> str:
    """The error's own message: a ``KeyError``'s without the quotes ``str`` adds, and for an error a torch
    data-loader worker re-raised (its message is the worker's whole traceback) the original message only."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", last)
