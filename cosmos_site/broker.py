"""The embedded profile's broker: kombu's filesystem transport, with messages that appear whole.

Kombu writes a message straight under its final name in the queue folder, so a worker listing
the folder at that moment takes an empty or half-written file, fails to decode it and stops for
good ("Unrecoverable error: JSONDecodeError", kombu issue #1551). Here a message is written under
a name no reader takes, then renamed into place: a rename within one folder is atomic, so a
reader sees a whole message or none.
"""

import contextlib
import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)

# Readers take only names ending in ".<queue>.msg".
PARTIAL_SUFFIX = ".partial"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The name kombu gives: readers take messages in the order of their names.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = path + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as message:
                message.write(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _get(self, queue):
        while True:  # kombu has taken the unreadable file out of the queue before decoding it
            try:
                return super()._get(queue)
            except ValueError:
                logger.warning("broker: dropped an unreadable message file from queue %r", queue)


class Transport(filesystem.Transport):
    Channel = Channel
