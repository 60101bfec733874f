import os

import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.fixtures_hosts"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """Each suite on PostgreSQL gets a test database of its own (named after its process).

    Django's default name, test_<NAME>, is shared by every suite pointed at the same server, so
    two suites on one machine would drop each other's database halfway through.
    """
    from django.conf import settings

    for database in settings.DATABASES.values():
        if database["ENGINE"] == "django.db.backends.postgresql":
            database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


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
def fast_sim(db, monkeypatch):
    """The local-sim node at stand-in speed (about a second a run) with small output videos."""
    from runs.models import GpuNode

    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "0.1")
    monkeypatch.delenv("COSMOS_SIM_FAIL", raising=False)
    GpuNode.objects.filter(name="local-sim").update(time_scale=0.001)
    return GpuNode.objects.get(name="local-sim")


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
    from runs.models import GpuNode

    return GpuNode.objects.create(**ssh_host.node_fields())


@pytest.fixture
def finished_run(fast_sim, render_dir, alice):
    """A completed run of Alice's, with real outputs (video, thumbnail, log)."""
    from runs.services import run_create, run_execute, run_plan

    plan = run_plan(prompt_text="a foggy harbour at dawn", input_dir=render_dir)
    return run_execute(run=run_create(plan=plan, owner=alice))
