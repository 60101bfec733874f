"""The embedded broker with writers and readers at once: every message arrives whole, and once."""

import threading
from queue import Empty

import pytest
from kombu import Connection

MESSAGES_PER_WRITER = 150
# Big enough that writing one takes a while, as a worker reading the folder would notice.
BODY_BYTES = 200_000


def connect(folder) -> Connection:
    (folder.parent / "control").mkdir(exist_ok=True)
    return Connection(
        "filesystem://",
        transport="cosmos_site.broker:Transport",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder.parent / "processed"),
            "store_processed": False,
            # Without it kombu writes its broadcast bindings to ./control in the working directory.
            "control_folder": str(folder.parent / "control"),
        },
    )


def test_it_uses_the_whole_message_transport_in_the_embedded_profile(settings):
    assert settings.CELERY_BROKER_URL == "filesystem://"
    assert settings.CELERY_BROKER_TRANSPORT == "cosmos_site.broker:Transport"


def test_it_never_hands_a_reader_a_message_still_being_written(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    (tmp_path / "processed").mkdir()
    writers = 2
    expected = {f"{writer}-{number}" for writer in range(writers) for number in range(MESSAGES_PER_WRITER)}
    received: list[str] = []
    errors: list[BaseException] = []
    done_writing = threading.Event()

    def write(writer: int) -> None:
        with connect(folder) as connection:
            queue = connection.SimpleQueue("jobs")
            try:
                for number in range(MESSAGES_PER_WRITER):
                    queue.put({"id": f"{writer}-{number}", "padding": "x" * BODY_BYTES})
            except BaseException as exc:
                errors.append(exc)
            finally:
                queue.close()

    def read() -> None:
        with connect(folder) as connection:
            queue = connection.SimpleQueue("jobs")
            try:
                while not (done_writing.is_set() and len(received) >= len(expected)):
                    try:
                        message = queue.get_nowait()
                    except Empty:
                        if done_writing.is_set() and not any(folder.glob("*.msg")):
                            break
                        continue
                    body = message.payload
                    assert len(body["padding"]) == BODY_BYTES
                    received.append(body["id"])
                    message.ack()
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)
            finally:
                queue.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    writing = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for writer in writing:
        writer.start()
    for writer in writing:
        writer.join()
    done_writing.set()
    for reader in readers:
        reader.join(timeout=60)

    assert not errors, errors
    assert sorted(received) == sorted(expected)
    assert not list(folder.iterdir()), "nothing is left behind in the queue folder"


def test_it_drops_an_unreadable_message_file_and_reads_on(tmp_path, caplog):
    folder = tmp_path / "queue"
    folder.mkdir()
    (tmp_path / "processed").mkdir()
    with connect(folder) as connection:
        queue = connection.SimpleQueue("jobs")
        (folder / "1_left-by-a-crash.jobs.msg").write_bytes(b"")
        queue.put({"id": "after"})
        message = queue.get_nowait()
        assert message.payload == {"id": "after"}
        message.ack()
        with pytest.raises(Empty):
            queue.get_nowait()
        queue.close()
    assert not list(folder.iterdir())
    assert "dropped an unreadable message file" in caplog.text


def test_it_creates_its_folders_when_it_first_connects(tmp_path):
    broker = tmp_path / "data" / "broker"
    options = {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
    }
    with Connection(
        "filesystem://", transport="cosmos_site.broker:Transport", transport_options=options
    ) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"id": "first"})
        assert queue.get_nowait().payload == {"id": "first"}
        queue.close()
    assert sorted(path.name for path in broker.iterdir()) == ["control", "processed", "queue"]
