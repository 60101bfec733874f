"""``python standin`` (the folder) or ``python -m standin``: runs the CLI.

Run as a folder, the package's own folder is first on sys.path; it is swapped for its parent, so the
package imports as ``standin`` (as it does from the uploaded zipapp, whose root has its own
``__main__.py``: cosmos/standin_archive.py) and its modules shadow nothing.
"""

import os
import sys

if __package__:
    from .cli import main
else:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if os.path.abspath(path or ".") != here]
    sys.path.insert(0, os.path.dirname(here))
    from standin.cli import main

sys.exit(main(sys.argv))
