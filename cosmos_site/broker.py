"""The embedded profile's broker: kombu's filesystem transport, with messages that appear whole.

Kombu writes a message straight under its final name in the queue folder, so a worker listing
the folder at that moment takes an empty or half-written file, fails to decode it and stops for
good ("Unrecoverable error: JSONDecodeError", kombu issue #1551). Here a message is written under
a name no reader takes, then renamed into place: a rename within one folder is atomic, so a
reader sees a whole message or none.

The exchange tables in the control folder have the same flaw: the first binder creates the file
(truncating it) before it takes the lock, so a second process can lock and read it empty, or
have its own binding truncated away. Here the file is opened without truncating, and read,
changed and rewritten only under the lock; an empty table is an empty list. And kombu keeps
the bindings it declared in memory, shared by every connection of the process: a second thread
that finds its binding declared there would publish before the first has written the table file,
and its message would match no queue and be lost. Here declaring a binding holds a process-wide
lock until the file is written, and the file is checked even when memory says it is done.
"""

import contextlib
import fcntl
import logging
import os
import threading
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Readers take only names ending in ".<queue>.msg".
PARTIAL_SUFFIX = ".partial"


# One binder at a time in this process, from the in-memory declaration to the table file's write.
_binding_lock = threading.Lock()


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The folders are made when the broker is first used, not by importing the settings.
        for folder in {self.data_folder_in, self.data_folder_out, self.processed_folder, self.control_folder}:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise ChannelError(f"Cannot create the broker folder {folder}: {exc.strerror}") from exc

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

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            with open(file, "rb") as table:
                fcntl.flock(table, fcntl.LOCK_SH)
                data = table.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*row) for row in (loads(data) if data.strip() else [])]

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        with _binding_lock:
            super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)
            if self.supports_fanout:
                exchange = exchange or "amq.direct"
                self._queue_bind(
                    exchange, *self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
                )

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
            with open(descriptor, "rb+", buffering=0) as table:
                fcntl.flock(table, fcntl.LOCK_EX)  # released when the file closes
                data = table.read()
                rows = [filesystem.exchange_queue_t(*row) for row in (loads(data) if data.strip() else [])]
                if binding not in rows:
                    rows.insert(0, binding)
                    table.seek(0)
                    table.truncate()
                    table.write(str_to_bytes(dumps(rows)))
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
