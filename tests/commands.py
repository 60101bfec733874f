"""Management commands run from a test as the shell runs them."""

from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError


def run_command(name: str, *args: str, **options) -> tuple[int, str, str]:
    """``manage.py NAME ARGS``: its exit status, standard output and standard error.

    A CommandError ends it as the shell sees one: its return code, its message on standard error.
    ``options`` go to the command (``stdin``, say).
    """
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err, **options)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()
