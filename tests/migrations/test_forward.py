"""A database made by the previous release migrates to this one with nothing lost, and back.

The previous release (bbbf64e) kept GPU nodes, jobs, the queue state and input sets in the runs
app; they now live in the nodes and inputs apps (runs 0014, nodes and inputs 0001 and 0002). Each
test makes a throwaway database of its own (a file on SQLite, a uniquely named database on
PostgreSQL when DATABASE_URL points at one), migrates it as `manage.py migrate` would, fills it
through the previous release's historical models and checks every row after the move.
"""

from datetime import UTC, datetime

import pytest
from django.apps import apps as current_apps
from django.core.management import call_command
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from tests.migrations.conftest import migrate

# The previous release's migrations of our apps (Django's own apps: their latest, unchanged since).
PREVIOUS_RELEASE = {"runs": "0013_run_storage_failures", "prompts": "0005_storable_text_and_priority_range"}
NEW_APPS = ("nodes", "inputs")
# Fields that moved to another table since (asserted where they went): a node's one image became
# its runtimes (nodes 0005).
MOVED_FIELDS = {("nodes", "gpunode"): {"docker_image"}}
# Models added since that release (their content types are new, not moved).
NEW_MODELS = {
    ("nodes", "noderuntime"),
    ("runs", "runduration"),
    ("runs", "sweep"),
    ("runs", "datasetexport"),
}
# Model -> the app it moved to from runs.
MOVED = {"gpunode": "nodes", "remotejob": "nodes", "queuestate": "nodes", "inputset": "inputs"}
OLD_TABLES = {"runs_gpunode", "runs_remotejob", "runs_queuestate", "runs_inputset"}
NEW_TABLES = {"nodes_gpunode", "nodes_remotejob", "nodes_queuestate", "inputs_inputset"}
AT = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def previous_release_leaves(alias: str) -> list[tuple[str, str]]:
    graph = MigrationLoader(connections[alias], ignore_no_migrations=True).graph
    leaves = {app: name for app, name in graph.leaf_nodes() if app not in NEW_APPS}
    return sorted({**leaves, **PREVIOUS_RELEASE}.items())


def migrate_to_previous_release(alias: str):
    """Migrate as the previous release did; its historical models."""
    leaves = previous_release_leaves(alias)
    for app, name in leaves:
        migrate(alias, app, name)
    return MigrationLoader(connections[alias]).project_state(leaves).apps


def fill(apps, alias: str) -> dict:
    """A site's worth of rows, written through the previous release's models; the objects by name."""

    def model(label: str):
        return apps.get_model(*label.split("."))

    User, Group, Permission = model("auth.User"), model("auth.Group"), model("auth.Permission")
    ContentType = model("contenttypes.ContentType")
    Tag, Prompt = model("prompts.Tag"), model("prompts.Prompt")
    GpuNode, RemoteJob, QueueState = model("runs.GpuNode"), model("runs.RemoteJob"), model("runs.QueueState")
    Run, Progress, ApiToken, InputSet = (
        model("runs.Run"),
        model("runs.Progress"),
        model("runs.ApiToken"),
        model("runs.InputSet"),
    )
    LogEntry = model("admin.LogEntry")
    db = alias

    alice = User.objects.using(db).create(username="alice", password="md5$x$y", email="alice@example.com")
    staff = User.objects.using(db).create(username="staff", password="md5$x$z", is_staff=True)
    operators = Group.objects.using(db).create(name="operators")
    node_type = ContentType.objects.using(db).get(app_label="runs", model="gpunode")
    alice.user_permissions.add(
        Permission.objects.using(db).get(content_type=node_type, codename="change_gpunode")
    )
    operators.permissions.add(
        Permission.objects.using(db).get(content_type__app_label="runs", codename="view_inputset"),
        Permission.objects.using(db).get(content_type__app_label="runs", codename="change_queuestate"),
    )
    staff.groups.add(operators)

    harbour = Tag.objects.using(db).create(name="harbour-scenes")
    night = Tag.objects.using(db).create(name="night")
    prompt = Prompt.objects.using(db).create(
        name="lighthouse at dawn",
        prompt_text="A foggy harbour at dawn, a lighthouse beam sweeping the water",
        negative_prompt="blurry",
        inputs={"dir": "/data/renders/harbour", "color": "color.mp4"},
        parameters={"guidance": 7, "seed": 42},
        owner=alice,
        created_at=AT,
    )
    prompt.tags.add(harbour, night)
    other = Prompt.objects.using(db).create(prompt_text="A desert road at noon", owner=staff, parent=prompt)

    local = GpuNode.objects.using(db).get(name="local-sim")  # made by runs 0002
    ssh = GpuNode.objects.using(db).create(
        name="gpu-box",
        transport="ssh",
        launcher="docker",
        remote_root="/srv/cosmos",
        docker_image="nvcr.io/cosmos:1",
        host="10.0.0.7",
        port=2222,
        username="cosmos",
        key_path="/keys/id_ed25519",
        host_key="ssh-ed25519 AAAAC3Nza",
        jump_host="ops@bastion:22",
        jump_host_key="ssh-ed25519 AAAAbastion",
        gpu_count=8,
        batch_size=2,
        time_scale=0.5,
        created_at=AT,
    )
    running = RemoteJob.objects.using(db).create(
        node=ssh,
        model_type="transfer1",
        status="running",
        devices=[0, 1],
        batched=True,
        directory="/srv/cosmos/jobs/jb_1",
        pgid=4242,
        log_offset=2**40,
        log_tail="step 12/35",
        monitor_token="t" * 32,
        heartbeat_at=AT,
        created_at=AT,
        launched_at=AT,
    )
    collected = RemoteJob.objects.using(db).create(node=local, status="collected", exit_code=0, ended_at=AT)
    queue = QueueState.objects.using(db).get(pk=1)  # made by runs 0008
    queue.paused, queue.changed_at = True, AT
    queue.save(using=db)

    first = Run.objects.using(db).create(
        prompt=prompt, owner=alice, node=ssh, job=running, batch_index=1, status="running", priority=5
    )
    done = Run.objects.using(db).create(
        prompt=prompt,
        owner=alice,
        node=local,
        job=collected,
        status="completed",
        outputs={"video": "output.mp4"},
        metadata={"timings": {"diffusion_step_seconds": 1.5}},
        completed_at=AT,
    )
    waiting = Run.objects.using(db).create(prompt=other, owner=staff)
    for percentage, stage in ((0, "queued"), (10, "uploading"), (42.5, "diffusion")):
        Progress.objects.using(db).create(run=first, stage=stage, percentage=percentage, timestamp=AT)
    Progress.objects.using(db).create(run=done, stage="completed", percentage=100)

    ApiToken.objects.using(db).create(user=alice, name="ci", prefix="cw_abcdefg", key_hash="f" * 64)
    InputSet.objects.using(db).create(
        name="harbour",
        directory="/data/renders/harbour",
        owner=alice,
        frames=121,
        fps=24.0,
        width=1280,
        height=704,
        modalities=["color", "depth"],
        thumbnail="/data/renders/harbour/thumb.jpg",
        metadata={"scene": "harbour"},
    )
    entry = LogEntry.objects.using(db).create(
        user=staff,
        content_type=node_type,
        object_id=str(ssh.pk),
        object_repr="gpu-box",
        action_flag=2,
        change_message='[{"changed": {"fields": ["Gpu count"]}}]',
        action_time=AT,
    )
    return {
        "prompt": prompt,
        "ssh": ssh,
        "local": local,
        "running": running,
        "collected": collected,
        "first": first,
        "done": done,
        "waiting": waiting,
        "entry": entry,
        "node_type": node_type,
    }


def snapshot(apps, alias: str) -> dict[tuple[str, str], dict]:
    """Every row of every table the models know, by (app, model) and primary key."""
    rows = {}
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        rows[(model._meta.app_label, model._meta.model_name)] = {
            row["pk"]: row for row in model._base_manager.using(alias).values("pk", *attnames(model))
        }
    return rows


def attnames(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def moved(rows: dict, *, to_new: bool) -> dict:
    """The snapshot as it must read after the move (to_new) or before it: models and content types relabelled."""
    result = {}
    for (app, model), table in rows.items():
        if model in MOVED and app in ("runs", MOVED[model]):
            app = MOVED[model] if to_new else "runs"
        result[(app, model)] = table
        if (app, model) == ("contenttypes", "contenttype"):
            result[(app, model)] = {pk: relabelled(row, to_new=to_new) for pk, row in table.items()}
    return result


def relabelled(row: dict, *, to_new: bool) -> dict:
    if row["model"] in MOVED and row["app_label"] in ("runs", MOVED[row["model"]]):
        return {**row, "app_label": MOVED[row["model"]] if to_new else "runs"}
    return row


def assert_nothing_lost(before: dict, after: dict, *, new_content_types_of: tuple[str, ...] = ()) -> None:
    """Every row of ``before`` is in ``after`` with the same values (of the fields it had then).

    Content types and permissions are exactly those of before: none duplicated, none made anew,
    except content types (and their permissions) of the apps ``new_content_types_of``.
    """
    for key, rows in before.items():
        assert key in after, f"{key} is gone"
        gone = MOVED_FIELDS.get(key, set())
        rows = {
            pk: {name: value for name, value in row.items() if name not in gone} for pk, row in rows.items()
        }
        found = {pk: {name: row[name] for name in rows[pk]} for pk, row in after[key].items() if pk in rows}
        assert found == rows, f"rows of {key} lost or changed"
    content_types = after["contenttypes", "contenttype"]
    added = {pk for pk in content_types.keys() - before["contenttypes", "contenttype"].keys()}
    added_models = {
        pk for pk in added if (content_types[pk]["app_label"], content_types[pk]["model"]) in NEW_MODELS
    }
    assert {content_types[pk]["app_label"] for pk in added - added_models} <= set(new_content_types_of)
    permissions = after["auth", "permission"]
    added_permissions = permissions.keys() - before["auth", "permission"].keys()
    assert {permissions[pk]["content_type_id"] for pk in added_permissions} <= added
    labels = [(row["app_label"], row["model"]) for row in content_types.values()]
    assert len(labels) == len(set(labels)), "a content type is duplicated"


def table_names(alias: str) -> set[str]:
    return set(connections[alias].introspection.table_names())


def references(alias: str, table: str) -> dict[str, str]:
    """The tables that ``table``'s foreign keys point at, by column."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        relations = connection.introspection.get_relations(cursor, table)
    return {column: relation[1] for column, relation in relations.items()}


def assert_schema_of_this_release(alias: str) -> None:
    tables = table_names(alias)
    assert tables >= NEW_TABLES
    assert not tables & OLD_TABLES
    assert references(alias, "runs_run")["node_id"] == "nodes_gpunode"
    assert references(alias, "runs_run")["job_id"] == "nodes_remotejob"
    assert references(alias, "nodes_remotejob")["node_id"] == "nodes_gpunode"
    assert references(alias, "inputs_inputset")["owner_id"] == "auth_user"


def assert_this_release_reads_it(alias: str, made: dict) -> None:
    """The code of this release reads the same rows, its foreign keys resolve, and it can add more."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from inputs.models import InputSet
    from nodes.models import GpuNode, QueueState, RemoteJob
    from prompts.models import Prompt
    from runs.models import Run

    first = Run.objects.using(alias).select_related("node", "job__node").get(pk=made["first"].pk)
    assert (first.node.name, first.job.pk, first.job.node.name) == ("gpu-box", made["running"].pk, "gpu-box")
    done = Run.objects.using(alias).get(pk=made["done"].pk)
    assert (done.node.name, done.job.status) == ("local-sim", "collected")
    assert Run.objects.using(alias).get(pk=made["waiting"].pk).node is None
    ssh = GpuNode.objects.using(alias).get(name="gpu-box")
    assert list(ssh.runs.values_list("pk", flat=True)) == [made["first"].pk]
    assert list(ssh.jobs.values_list("pk", flat=True)) == [made["running"].pk]
    # The node's one image became a runtime for every model it ran (nodes 0005).
    assert set(ssh.runtimes.values_list("docker_image", flat=True)) == {"nvcr.io/cosmos:1"}
    assert ssh.runtimes.count() == 8
    assert QueueState.objects.using(alias).get(pk=1).paused
    assert InputSet.objects.using(alias).get(name="harbour").owner.username == "alice"

    # The content types kept their ids: the permissions granted and the admin history follow.
    ContentType.objects.clear_cache()
    assert ContentType.objects.db_manager(alias).get_for_model(GpuNode).pk == made["node_type"].pk
    assert ContentType.objects.db_manager(alias).get_for_model(InputSet).app_label == "inputs"
    alice = User.objects.using(alias).get(username="alice")
    staff = User.objects.using(alias).get(username="staff")
    assert alice.has_perm("nodes.change_gpunode") and not alice.has_perm("nodes.delete_gpunode")
    assert staff.has_perm("inputs.view_inputset") and staff.has_perm("nodes.change_queuestate")
    entry = LogEntry.objects.using(alias).get(pk=made["entry"].pk)
    assert entry.get_edited_object() == ssh
    assert entry.get_admin_url() == f"/admin/nodes/gpunode/{ssh.pk}/change/"

    # The full-text index still has the prompt, its tags included.
    prompt_id = made["prompt"].pk
    assert [prompt.pk for prompt in Prompt.objects.using(alias).search("lighthouse harbour")] == [prompt_id]
    assert [prompt.pk for prompt in Prompt.objects.using(alias).search("harbour-scenes")] == [prompt_id]

    # New rows after the rename: the primary keys (PostgreSQL's identity sequences) carry on.
    node = GpuNode.objects.using(alias).create(name=f"added-{GpuNode.objects.using(alias).count()}")
    assert node.pk > ssh.pk
    job = RemoteJob.objects.using(alias).create(node=node)
    run = Run.objects.using(alias).create(prompt_id=prompt_id, node=node, job=job)
    assert list(node.runs.all()) == [run]
    harbour = InputSet.objects.using(alias).get(name="harbour")
    later = InputSet.objects.using(alias).create(
        name=f"later-{node.pk}", directory=f"/data/later-{node.pk}", frames=1, fps=24, width=64, height=64
    )
    assert later.pk > harbour.pk


@pytest.mark.slow(8)
def test_a_previous_release_database_migrates_forward_with_nothing_lost(database):
    old_apps = migrate_to_previous_release(database)
    made = fill(old_apps, database)
    before = snapshot(old_apps, database)

    migrate(database)

    assert_nothing_lost(moved(before, to_new=True), snapshot(current_apps, database))
    assert_schema_of_this_release(database)
    assert_this_release_reads_it(database, made)


@pytest.mark.slow(10)
def test_it_migrates_back_to_the_previous_release_and_forward_again(database):
    old_apps = migrate_to_previous_release(database)
    made = fill(old_apps, database)
    before = snapshot(old_apps, database)
    migrate(database)

    # Back as an operator rolling back would: runs first (nodes and inputs 0002 go with it),
    # then the state-only 0001s of the new apps.
    migrate(database, "runs", PREVIOUS_RELEASE["runs"])
    migrate(database, "nodes", "zero")
    migrate(database, "inputs", "zero")

    # `migrate runs 0013` leaves the new apps' state-only 0001s applied, so its post_migrate made
    # their content types anew; harmless to the previous release, which knows no such apps.
    assert_nothing_lost(before, snapshot(old_apps, database), new_content_types_of=NEW_APPS)
    tables = table_names(database)
    assert tables >= OLD_TABLES and not tables & NEW_TABLES
    assert references(database, "runs_run")["node_id"] == "runs_gpunode"
    assert references(database, "runs_run")["job_id"] == "runs_remotejob"
    assert references(database, "runs_remotejob")["node_id"] == "runs_gpunode"
    ContentType = old_apps.get_model("contenttypes", "ContentType")
    Permission = old_apps.get_model("auth", "Permission")
    assert (
        ContentType.objects.using(database).get(app_label="runs", model="gpunode").pk == made["node_type"].pk
    )
    Run = old_apps.get_model("runs", "Run")
    assert Run.objects.using(database).get(pk=made["first"].pk).job.node.name == "gpu-box"

    # Someone grants a permission of those new content types meanwhile (alice's is one she has).
    staff = old_apps.get_model("auth", "User").objects.using(database).get(username="staff")
    alice = old_apps.get_model("auth", "User").objects.using(database).get(username="alice")
    stale = Permission.objects.using(database).filter(content_type__app_label="nodes")
    staff.user_permissions.add(stale.get(codename="view_remotejob"))
    alice.user_permissions.add(stale.get(codename="change_gpunode"))

    # And forward again: the content types move once more and absorb those made in between, so
    # the permissions granted and the admin history still point at what the code uses.
    migrate(database)
    assert_nothing_lost(moved(before, to_new=True), snapshot(current_apps, database))
    assert_schema_of_this_release(database)
    assert_this_release_reads_it(database, made)
    from django.contrib.auth.models import User

    assert User.objects.using(database).get(username="staff").has_perm("nodes.view_remotejob")


def test_the_models_need_no_new_migrations(settings):
    """`makemigrations --check` finds nothing to do (no database: its history check is not wanted here)."""

    class NoDatabase:
        def allow_migrate(self, db, app_label, **hints):
            return False

    settings.DATABASE_ROUTERS = [NoDatabase()]
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
