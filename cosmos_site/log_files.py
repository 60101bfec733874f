"""The log file handler: the logs folder is created when the first record is written, not before."""

import logging.handlers
from pathlib import Path


class RotatingFileHandler(logging.handlers.RotatingFileHandler):
    """logging's rotating file, in a folder it creates when it opens the file.

    Configured with ``delay``, it opens the file at the first record: configuring logging (at
    django.setup) then creates nothing, and a data folder that cannot be written is reported by
    the system check instead of a traceback from logging's set-up.
    """

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()
