"""GPU nodes, the jobs that hold their GPUs, and whether the queue hands out work."""

import re
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cosmos.launch import DOCKER_LAUNCHER, SIM_LAUNCHER
from cosmos.params import ParameterError
from cosmos.profiles import UnknownModel, profile_for
from cosmos_site.ids import new_id
from cosmos_site.model_types import ModelType, default_model_type


class Transport(models.TextChoices):
    LOCAL = "local", "Local (this machine)"
    SSH = "ssh", "SSH"


class Launcher(models.TextChoices):
    DOCKER = DOCKER_LAUNCHER, "Docker (real Cosmos)"
    SIM = SIM_LAUNCHER, "Simulated (Cosmos stand-in)"


def model_defaults_problem(value) -> str | None:
    """What is wrong with a node's per-model defaults (None: nothing): known models and parameters only."""
    if not isinstance(value, dict):
        return 'Give an object of models, such as {"cosmos3_nano": {"offload_guardrail_models": true}}.'
    for model, settings_ in value.items():
        try:
            profile = profile_for(str(model))
        except UnknownModel as exc:
            return str(exc)
        if not isinstance(settings_, dict):
            return f"{model}: give an object of parameters"
        known = {param.name: param for param in profile.parameters}
        for name, setting in settings_.items():
            if name not in known:
                return f"{model}: unknown parameter {name!r}; known: {', '.join(sorted(known))}"
            try:
                known[name].clean(setting)
            except ParameterError as exc:
                return f"{model}: {exc}"
    return None


class GpuNodeQuerySet(models.QuerySet):
    def offering(self, model_type: str) -> "GpuNodeQuerySet":
        """Nodes that run ``model_type``: every stand-in node, and Docker nodes with an image for it."""
        with_image = NodeRuntime.objects.filter(model_type=model_type).exclude(docker_image="")
        return self.filter(Q(launcher=Launcher.SIM) | Q(pk__in=with_image.values("node")))


class GpuNode(models.Model):
    """A machine that runs Cosmos jobs, reached through a transport.

    Everything the node holds for us lives under ``remote_root`` (input cache, one folder per
    run); nothing outside it is ever written or deleted.
    """

    name = models.SlugField(max_length=64, unique=True)
    transport = models.CharField(max_length=16, choices=Transport.choices, default=Transport.LOCAL)
    launcher = models.CharField(max_length=16, choices=Launcher.choices, default=Launcher.DOCKER)
    remote_root = models.CharField(
        max_length=500,
        blank=True,
        help_text="Absolute working folder on the node. Blank on a local node: <data folder>/nodes/<name>.",
    )
    checkpoint_dir = models.CharField(
        max_length=500,
        blank=True,
        help_text="Folder of Cosmos checkpoints on the node. Blank: <remote root>/checkpoints.",
    )
    host = models.CharField(max_length=255, blank=True, help_text="SSH host name or address.")
    port = models.PositiveIntegerField(default=22)
    username = models.CharField(max_length=64, blank=True)
    key_path = models.CharField(
        max_length=500, blank=True, help_text="Private key file; blank uses the SSH agent and ~/.ssh keys."
    )
    host_key = models.TextField(
        blank=True, help_text='The host key we trust, as "ssh-ed25519 AAAA…"; any other key is refused.'
    )
    jump_host = models.CharField(
        max_length=300, blank=True, help_text="Optional bastion to connect through, as user@host[:port]."
    )
    jump_host_key = models.TextField(blank=True, help_text="The bastion's host key we trust.")
    python = models.CharField(
        max_length=300, default="python3", help_text="Interpreter for the Cosmos stand-in (sim launcher)."
    )
    gpu_count = models.PositiveSmallIntegerField(
        "GPUs", default=1, help_text="GPU slots: jobs share them, one GPU each."
    )
    batch_size = models.PositiveSmallIntegerField(
        default=4,
        help_text="Most compatible runs launched as one model invocation (one model load); 1 = never batch.",
    )
    time_scale = models.FloatField(
        default=1.0,
        help_text="Stand-in speed: 1.0 is as slow as a real H100; 0.03 turns ten minutes into 20 seconds.",
    )
    gpu_type = models.CharField(
        max_length=100,
        blank=True,
        help_text="Its GPUs as nvidia-smi names them (cosmos_node status fills it in); ETAs learn by it.",
    )
    model_defaults = models.JSONField(
        default=dict,
        blank=True,
        help_text="Settings every run of a model on this node starts from, by model: for example "
        '{"cosmos3_nano": {"checkpoint_path": "/models/Cosmos3-Nano", "offload_guardrail_models": true}}. '
        "A run's own settings win.",
    )
    hf_cache_dir = models.CharField(
        max_length=500,
        blank=True,
        help_text="The node's Hugging Face cache (HF_HOME), shared by every job so a checkpoint downloads "
        "once. Blank: <remote root>/huggingface.",
    )
    # The node's Hugging Face token, encrypted (cosmos_site/secrets.py): set with `cosmos_node token`
    # or the admin's password field, never shown again, sent to a job only in an owner-only env file.
    hf_token_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = GpuNodeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "GPU node"  # not "gpu node": the admin shows it
        constraints = [
            models.CheckConstraint(condition=Q(gpu_count__gte=1), name="gpunode_gpu_count_positive"),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="gpunode_batch_size_positive"),
            models.CheckConstraint(condition=Q(time_scale__gt=0), name="gpunode_time_scale_positive"),
            models.CheckConstraint(condition=Q(port__gte=1, port__lte=65535), name="gpunode_port_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.remote_root and not self.remote_root.startswith("/"):
            raise ValidationError({"remote_root": "Use an absolute path, such as /data/cosmos."})
        if self.transport == Transport.SSH:
            missing = {
                field: message
                for field, value, message in (
                    ("host", self.host, "An SSH node needs its host."),
                    ("username", self.username, "An SSH node needs the user to log in as."),
                    ("remote_root", self.remote_root, "An SSH node needs its working folder."),
                    ("host_key", self.host_key, "An SSH node needs the host key to trust (cosmos_node add)."),
                )
                if not value
            }
            if missing:
                raise ValidationError(missing)
        problem = model_defaults_problem(self.model_defaults)
        if problem:
            raise ValidationError({"model_defaults": problem})

    @property
    def root(self) -> PurePosixPath:
        """The node's working folder, as a path on the node."""
        if self.remote_root:
            return PurePosixPath(self.remote_root)
        return PurePosixPath(settings.COSMOS_NODES_DIR / self.name)

    @property
    def checkpoints(self) -> PurePosixPath:
        return PurePosixPath(self.checkpoint_dir) if self.checkpoint_dir else self.root / "checkpoints"

    @property
    def hf_cache(self) -> PurePosixPath:
        """The Hugging Face cache on the node (HF_HOME): downloads outlive every --rm container."""
        return PurePosixPath(self.hf_cache_dir) if self.hf_cache_dir else self.root / "huggingface"

    def offers(self, model_type: str) -> bool:
        """Whether this node runs ``model_type``: the stand-in every model, Docker those with an image."""
        if self.launcher == Launcher.SIM:
            return True
        return self.runtimes.filter(model_type=model_type).exclude(docker_image="").exists()

    def runtime_for(self, model_type: str) -> "NodeRuntime | None":
        """The node's runtime for a model; no query when its runtimes were prefetched (many runs'
        provenance records, runs.datasets.export)."""
        if "runtimes" in getattr(self, "_prefetched_objects_cache", {}):
            return next((found for found in self.runtimes.all() if found.model_type == model_type), None)
        return self.runtimes.filter(model_type=model_type).first()

    def record_gpu_type(self, gpu_type: str) -> None:
        """Remember the GPU model the node reports (one UPDATE, only when it changed)."""
        gpu_type = gpu_type.strip()[: GpuNode._meta.get_field("gpu_type").max_length]
        if gpu_type and gpu_type != self.gpu_type:
            GpuNode.objects.filter(pk=self.pk).update(gpu_type=gpu_type)
            self.gpu_type = gpu_type

    # --- the Hugging Face token (one-row state changes) -------------------------------------------

    @property
    def has_hf_token(self) -> bool:
        return bool(self.hf_token_encrypted)

    def hf_token(self) -> str:
        """The token in clear, for the env file of a job or a preflight; "" when none is set.

        SecretUnreadable, naming the node and the fix, when it cannot be decrypted (SECRET_KEY changed).
        """
        from cosmos_site.secrets import SecretUnreadable, decrypt_secret

        if not self.hf_token_encrypted:
            return ""
        try:
            return decrypt_secret(self.hf_token_encrypted)
        except SecretUnreadable:
            raise SecretUnreadable(
                f"the Hugging Face token of node {self.name} cannot be decrypted (was COSMOS_SECRET_KEY "
                f"changed?): set it again with cosmos_node token {self.name}"
            ) from None

    def set_hf_token(self, token: str) -> None:
        """Store ``token`` encrypted ("" removes it); its value is never kept in clear."""
        from cosmos_site.secrets import encrypt_secret

        encrypted = encrypt_secret(token) if token else ""
        GpuNode.objects.filter(pk=self.pk).update(hf_token_encrypted=encrypted)
        self.hf_token_encrypted = encrypted


def docker_options_problem(value) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        return 'Give a list of docker run options, such as ["--shm-size=16g", "--ulimit", "memlock=-1"].'
    return None


def env_problem(value) -> str | None:
    if not isinstance(value, dict):
        return 'Give an object of variables, such as {"NCCL_P2P_DISABLE": "1"}.'
    for name, setting in value.items():
        if not ENV_NAME.match(str(name)):
            return f"{name!r} is not a variable name (letters, digits and _, not starting with a digit)"
        if name in RESERVED_ENV:
            return f"{name} is set by Cosmos Workflow itself ({RESERVED_ENV[name]})"
        if not isinstance(setting, str):
            return f"{name}: give its value as text"
    return None


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables a runtime may not set: the launcher's own, and the token (its own field, kept encrypted).
TOKEN_ADVICE = "use cosmos_node token NAME: a token is kept encrypted, never in plain settings"
RESERVED_ENV = {
    "HF_TOKEN": TOKEN_ADVICE,
    "HUGGING_FACE_HUB_TOKEN": TOKEN_ADVICE,
    "HF_HOME": "it is the node's Hugging Face cache",
    "PYTHONPATH": "it is the model's repository in the image, /workspace",
}


class NodeRuntime(models.Model):
    """How one node runs one model: the image (different CUDA, Python and dependencies per model),
    extra ``docker run`` options and environment, and what its preflight found and chose.

    A Docker node offers exactly the models it has a runtime with an image for; a stand-in node
    offers every model and needs no runtime (one may still carry environment for it).
    """

    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="runtimes")
    model_type = models.CharField(max_length=32, choices=ModelType.choices)
    docker_image = models.CharField(
        max_length=300, blank=True, help_text="Image holding this model's repository at /workspace."
    )
    docker_options = models.JSONField(
        default=list, blank=True, help_text='Extra docker run options, as a list: ["--shm-size=16g"].'
    )
    env = models.JSONField(
        default=dict, blank=True, help_text='Extra environment for the model: {"NCCL_P2P_DISABLE": "1"}.'
    )
    # Set by the preflight: parameters it turned on because the GPUs need them (offload options).
    preflight_parameters = models.JSONField(default=dict, blank=True, editable=False)
    preflight_report = models.JSONField(default=list, blank=True, editable=False)
    preflight_ok = models.BooleanField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["node", "model_type"]
        constraints = [
            models.UniqueConstraint(fields=["node", "model_type"], name="noderuntime_one_per_model"),
        ]

    def __str__(self) -> str:
        return f"{self.node.name}: {self.model_type}"

    def clean(self) -> None:
        problems = {
            field: problem
            for field, problem in (
                ("docker_options", docker_options_problem(self.docker_options)),
                ("env", env_problem(self.env)),
            )
            if problem
        }
        if problems:
            raise ValidationError(problems)

    def record_preflight(self, *, ok: bool, report: list[dict], parameters: dict) -> None:
        """What a preflight found (one UPDATE): its report, and the parameters it chose for the GPUs."""
        fields = {
            "preflight_ok": ok,
            "preflight_report": report,
            "preflight_parameters": parameters,
            "checked_at": timezone.now(),
        }
        NodeRuntime.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)


class JobStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    EXITED = "exited", "Exited"
    COLLECTED = "collected", "Collected"
    ABANDONED = "abandoned", "Abandoned"


# Jobs holding GPU devices: from the claim until their processes have ended.
BUSY_JOB_STATUSES = (JobStatus.STARTING, JobStatus.RUNNING)


def new_job_id() -> str:
    return new_id("jb")


class RemoteJobQuerySet(models.QuerySet):
    def unattended(self, *, stale_before) -> "RemoteJobQuerySet":
        """Jobs with a step to take (launch, monitor, collect) and no live worker on it.

        A worker on a step refreshes ``heartbeat_at``; one older than ``stale_before`` has died.
        A job handed on between steps (no heartbeat) needs a worker at once, except a new job
        whose launch message may simply be waiting in the queue: it counts from its creation.
        """
        return self.filter(status__in=(JobStatus.STARTING, JobStatus.RUNNING, JobStatus.EXITED)).filter(
            Q(heartbeat_at__lt=stale_before)
            | (
                Q(heartbeat_at__isnull=True)
                & (~Q(status=JobStatus.STARTING) | Q(created_at__lt=stale_before))
            )
        )


class RemoteJob(models.Model):
    """One invocation of a model on a node: a single run, or a batch of compatible runs.

    It holds GPU devices of its node from the moment it is claimed until its processes end, so
    the next job can start while this one's outputs are still downloading. State transitions
    (conditional UPDATEs, like Run's):

        starting -> running -> exited -> collected
        starting -> abandoned      (never launched: its runs go back to the queue)

    While running, exactly one monitor follows it: the one holding ``monitor_token``, which
    proves it is alive by refreshing ``heartbeat_at``. A monitor whose heartbeat went stale is
    replaced; the job itself is never launched again.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_job_id, editable=False)
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="jobs")
    model_type = models.CharField(max_length=32, choices=ModelType.choices, default=default_model_type)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.STARTING)
    devices = models.JSONField(default=list, help_text="Indexes of the node's GPUs this job holds.")
    batched = models.BooleanField(default=False, help_text="Launched with a batch file (one line per run).")
    directory = models.CharField(max_length=500, blank=True, help_text="The job's folder on the node.")
    pgid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    log_offset = models.BigIntegerField(default=0, help_text="Bytes of job.log already read.")
    log_tail = models.TextField(blank=True, help_text="The log's last lines, refreshed with each heartbeat.")
    monitor_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = RemoteJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Busy devices of a node (every launch decision), and jobs to re-attach or collect.
            models.Index(fields=["node", "status"], name="job_node_status_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat_idx"),
        ]

    def __str__(self) -> str:
        return self.id

    def _move(self, to_status: str, allowed_from: tuple[str, ...], **fields) -> bool:
        changes = {"status": to_status, **fields}
        moved = RemoteJob.objects.filter(pk=self.pk, status__in=allowed_from).update(**changes)
        if moved:
            for name, value in changes.items():
                setattr(self, name, value)
        return bool(moved)

    def mark_launched(self, *, pgid: int) -> bool:
        return self._move(JobStatus.RUNNING, (JobStatus.STARTING,), pgid=pgid, launched_at=timezone.now())

    def mark_exited(self, *, exit_code: int | None) -> bool:
        """The processes have ended (exit_code None: they vanished without one). Frees the devices."""
        return self._move(
            JobStatus.EXITED, (JobStatus.RUNNING,), exit_code=exit_code, ended_at=timezone.now()
        )

    def mark_collected(self, *, token: str) -> bool:
        """Done: only the collector holding the claim (``token``) may say so."""
        moved = RemoteJob.objects.filter(pk=self.pk, status=JobStatus.EXITED, monitor_token=token).update(
            status=JobStatus.COLLECTED
        )
        if moved:
            self.status = JobStatus.COLLECTED
        return bool(moved)

    def abandon(self) -> bool:
        """Give up a job that was never launched, freeing its devices."""
        return self._move(JobStatus.ABANDONED, (JobStatus.STARTING,), ended_at=timezone.now())

    def claim(self, *, token: str, stale_before) -> bool:
        """Take the job's next step (launch, monitor or collect), unless another worker is alive on it.

        The owner proves it is alive by refreshing ``heartbeat_at``; one older than ``stale_before``
        has died, and its step is taken over.
        """
        claimed = (
            RemoteJob.objects.filter(
                pk=self.pk, status__in=(JobStatus.STARTING, JobStatus.RUNNING, JobStatus.EXITED)
            )
            .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before) | Q(monitor_token=token))
            .update(monitor_token=token, heartbeat_at=timezone.now())
        )
        if claimed:
            self.refresh_from_db()
        return bool(claimed)

    def release(self, *, token: str) -> None:
        """Hand the job on: its step is done, the next one (a worker's) may claim it at once."""
        RemoteJob.objects.filter(pk=self.pk, monitor_token=token).update(monitor_token="", heartbeat_at=None)

    def holds(self, *, token: str) -> bool:
        """Whether the worker holding ``token`` still owns the job's step (nobody took it over)."""
        return RemoteJob.objects.filter(pk=self.pk, monitor_token=token).exists()

    def keep_alive(self, *, token: str) -> bool:
        """Refresh the heartbeat of the step ``token`` holds; False once another worker took it over."""
        return bool(
            RemoteJob.objects.filter(pk=self.pk, monitor_token=token).update(heartbeat_at=timezone.now())
        )

    def beat(self, *, token: str, log_offset: int, log_tail: str | None = None) -> bool:
        """Refresh the heartbeat; False when another monitor has taken over (this one must stop)."""
        fields = {"heartbeat_at": timezone.now(), "log_offset": log_offset}
        if log_tail is not None:
            fields["log_tail"] = log_tail
        return bool(RemoteJob.objects.filter(pk=self.pk, monitor_token=token).update(**fields))


class QueueState(models.Model):
    """Whether the queue hands runs to GPUs. One row; a restart never resumes a paused queue."""

    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "queue state"

    def __str__(self) -> str:
        return "paused" if self.paused else "running"

    @classmethod
    def current(cls) -> "QueueState":
        state, _ = cls.objects.get_or_create(pk=1)
        return state

    @classmethod
    def set_paused(cls, paused: bool) -> "QueueState":
        cls.objects.update_or_create(pk=1, defaults={"paused": paused, "changed_at": timezone.now()})
        return cls.current()
