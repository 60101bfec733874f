import contextlib
import os
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.fixtures_hosts", "tests.fixtures_webhooks"]

# The cost of a test marked plain `slow`, for ordering; heavier ones say theirs: `slow(50)`.
SLOW_SECONDS = 3


def pytest_xdist_auto_num_workers(config) -> int:
    """Two pytest-xdist workers per core, at most eight, and no more than the files named.

    Most tests wait on sshd, the stand-in, a browser or a subprocess rather than the CPU, so two per
    core keep both busy. Files are the unit of work (--dist loadfile): a run of one file, or of
    tests in one file, starts fastest in a single process (0 workers).
    """
    workers = min(8, 2 * len(os.sched_getaffinity(0)))
    paths = [Path(argument.split("::")[0]) for argument in config.args]
    if paths and all(path.suffix == ".py" for path in paths):
        files = len(set(paths))
        workers = min(workers, files) if files > 1 else 0
    return workers


def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, except that the browser modules go to a worker by group: a group's modules
    share that worker's one deployment and Chromium (tests/browser/conftest.py) instead of each
    starting its own. One group for them all made a chain longer than the rest of the suite (about
    six minutes of a make test's six); two groups, as near even as their costs allow, run side by
    side for one more deployment and browser."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserModulesByGroup(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            if not path.startswith(BROWSER_TESTS):
                return path
            module = Path(path).stem
            return BROWSER_TESTS + BROWSER_GROUPS.get(module, "other")

    return BrowserModulesByGroup(config, log)


BROWSER_TESTS = "tests/browser/"
# Each group's modules cost (browser_marks) about the same in all; a new module joins the lighter.
BROWSER_GROUPS = {
    "test_cosmos3_pages": "models",  # 100
    "test_run_forms": "models",  # 60
    "test_pages": "other",  # 90
    "test_sweep_pages": "other",  # 60
    "test_layout_pages": "models",  # 60
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    """Longest first: pytest-xdist hands out files in this order, and a long one started last would
    leave the other workers idle while it finishes. `slow(seconds)` gives a test's rough cost.

    This undoes pytest-django's transactional-tests-last order, which pytest_runtest_teardown
    below makes unnecessary.
    """

    def cost(item) -> float:
        slow = item.get_closest_marker("slow")
        return (slow.args[0] if slow.args else SLOW_SECONDS) if slow else 0

    items.sort(key=cost, reverse=True)  # stable: a file's tests stay together and in order


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """Each suite (and each pytest-xdist worker) on PostgreSQL gets a test database of its own.

    Django's default name, test_<NAME>, is shared by every suite pointed at the same server, so
    two suites on one machine would drop each other's database halfway through.
    """
    from django.conf import settings

    for database in settings.DATABASES.values():
        if database["ENGINE"] == "django.db.backends.postgresql":
            database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"
        else:
            # SQLite: an in-memory database, private to each process (pytest-xdist's workers too);
            # the file name xdist would make from our absolute path is not one SQLite can open.
            database.setdefault("TEST", {})["NAME"] = ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Put back what the migrations made (the local-sim node) after a transactional test's flush.

    Django restores serialized rows only when the next transactional test starts, so whatever runs
    after the last one (another file on the same pytest-xdist worker) would find the tables empty.
    """
    result = yield
    marker = item.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("serialized_rollback"):
        from django.db import connections
        from pytest_django.plugin import blocking_manager_key

        with item.config.stash[blocking_manager_key].unblock():
            for connection in connections.all():
                contents = getattr(connection, "_test_serialized_contents", None)
                if contents:
                    connection.creation.deserialize_db_from_string(contents)
    return result


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Each test gets its own data folder: outputs and local node roots never leak between tests."""
    root = tmp_path / "data"
    settings.COSMOS_DATA_DIR = root
    settings.COSMOS_OUTPUTS_DIR = root / "outputs"
    settings.COSMOS_NODES_DIR = root / "nodes"
    settings.COSMOS_LOGS_DIR = root / "logs"
    settings.COSMOS_UPLOADS_DIR = root / "uploads"
    return root


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Real hashing costs half a second per user; tests make many users and check no passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    """Alice owns the prompts and runs under test."""
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    """Bob is a stranger to Alice's prompts and runs."""
    return UserFactory(username="bob")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def alices_key(alice) -> str:
    """An API key of Alice's."""
    from runs.models import ApiToken

    return ApiToken.issue(user=alice)[1]


@pytest.fixture
def bobs_key(bob) -> str:
    """An API key of Bob's, the stranger."""
    from runs.models import ApiToken

    return ApiToken.issue(user=bob)[1]


@pytest.fixture
def no_workers():
    """Every task of runs.tasks recorded instead of sent to a broker: the test sees what was enqueued.

    ``no_workers.stage_run``, ``.schedule``, ``.cancel_run`` (one attribute per task) are the mocks
    of each task's ``delay``.
    """
    from celery import Task

    from runs import tasks

    every_task = {name: task for name, task in vars(tasks).items() if isinstance(task, Task)}
    with contextlib.ExitStack() as patches:
        delays = {
            name: patches.enter_context(mock.patch.object(task, "delay")) for name, task in every_task.items()
        }
        yield SimpleNamespace(**delays)


@pytest.fixture
def fast_sim(db, monkeypatch):
    """The local-sim node at stand-in speed (about a second a run) with small output videos."""
    from nodes.models import GpuNode

    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "0.1")
    monkeypatch.delenv("COSMOS_SIM_FAIL", raising=False)
    GpuNode.objects.filter(name="local-sim").update(time_scale=0.001)
    return GpuNode.objects.get(name="local-sim")


@pytest.fixture
def launch_log(tmp_path, monkeypatch) -> Path:
    """The stand-in's record of every process start (COSMOS_SIM_LAUNCH_LOG): one JSON line each."""
    path = tmp_path / "launches.jsonl"
    monkeypatch.setenv("COSMOS_SIM_LAUNCH_LOG", str(path))
    return path


@pytest.fixture
def render_dir(tmp_path):
    """An input folder as a renderer would leave it: color plus depth and segmentation passes."""
    from tests.videos import write_test_video

    folder = tmp_path / "renders" / "city"
    for shade, name in enumerate(("color.mp4", "depth.mp4", "segmentation.mp4")):
        write_test_video(folder / name, frames=25, width=128, height=72, shade=shade * 80)
    return folder


@pytest.fixture
def fast_ssh(settings):
    """Retries, stall detection and reconnects on a test's time scale."""
    settings.COSMOS_SSH_CONNECT_TIMEOUT = 2.0
    settings.COSMOS_SSH_RETRIES = 3
    settings.COSMOS_SSH_RETRY_DELAY = 0.05
    settings.COSMOS_SSH_STALL_SECONDS = 2.0
    settings.COSMOS_SSH_RECONNECT_SECONDS = 60.0
    settings.COSMOS_CANCEL_GRACE_SECONDS = 2.0


@pytest.fixture
def ssh_node(db, ssh_host, fast_ssh):
    """An SSH GPU node (docker launcher) on the test sshd, with the docker and nvidia-smi shims."""

    return ssh_host.make_node()


@pytest.fixture
def finished_run(fast_sim, render_dir, alice):
    """A completed run of Alice's, with real outputs (video, thumbnail, log)."""
    from runs.services import run_create, run_execute, run_plan

    plan = run_plan(prompt_text="a foggy harbour at dawn", input_dir=render_dir)
    return run_execute(run=run_create(plan=plan, owner=alice))


@pytest.fixture
def image_run(alice, settings):
    """A completed run of Alice's whose result is an image, its folder as Cosmos 3's text2image leaves
    it once saved: output.jpg (192×128), its thumbnail.jpg and sample_args.json."""
    from django.utils import timezone

    from cosmos.media import probe_image, write_image_thumbnail
    from runs.models import RunStatus
    from runs.outputs import outputs_json
    from tests.factories import PromptFactory, RunFactory
    from tests.videos import write_test_image

    now = timezone.now()
    prompt = PromptFactory(owner=alice, name="lighthouse")
    run = RunFactory(prompt=prompt, status=RunStatus.COMPLETED, started_at=now, completed_at=now)
    folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
    image = write_test_image(folder / "output.jpg", width=192, height=128)
    write_image_thumbnail(image, folder / "thumbnail.jpg")
    (folder / "sample_args.json").write_text("{}", encoding="utf-8")
    names = ["output.jpg", "sample_args.json"]
    run.outputs = outputs_json(folder, names, image_info=probe_image(image))
    run.save(update_fields=["outputs"])
    return run


@pytest.fixture(autouse=True, scope="session")
def migrated_templates(tmp_path_factory, worker_id) -> None:
    """The folder where tests/stack.py keeps the migrated database that deployments copy: one that
    every pytest-xdist worker of this run shares, so the run migrates once."""
    from tests import stack

    basetemp = tmp_path_factory.getbasetemp()
    stack.TEMPLATES = basetemp if worker_id == "master" else basetemp.parent


def pytest_sessionfinish(session) -> None:
    """The run's main process drops the PostgreSQL templates its processes shared (tests/stack.py)
    once they are all done; a pytest-xdist worker leaves them to it."""
    if hasattr(session.config, "workerinput"):
        return
    from tests import stack

    # The folder the workers share: pytest-xdist gives each a basetemp inside this one.
    stack.drop_postgres_templates(session.config._tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True, scope="session")
def static_folder():
    """The static folder, made as a deployment's start makes it (cosmos_site.data_folders):
    settings create no folders at import, and WhiteNoise warns on every request without it."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
