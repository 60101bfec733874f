"""Settings for Cosmos Workflow: every value comes from the environment.

With no environment at all this runs the embedded profile: SQLite under ./var, an in-memory
channel layer and the local simulated GPU node, so a fresh checkout works with `make run`.
Setting DATABASE_URL (and, in later profiles, the broker and Redis URLs) scales it out without
a code change. The README lists every variable read here.
"""

import functools
import secrets
import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy

from cosmos_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_path,
    env_paths,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Data directory ---------------------------------------------------------------------------

COSMOS_DATA_DIR = env_path("COSMOS_DATA_DIR", BASE_DIR / "var")
COSMOS_OUTPUTS_DIR = COSMOS_DATA_DIR / "outputs"
COSMOS_LOGS_DIR = COSMOS_DATA_DIR / "logs"
# Working roots of nodes whose transport is `local` and whose remote root is left blank.
COSMOS_NODES_DIR = COSMOS_DATA_DIR / "nodes"
# Importing the settings creates no folder and no file: each is made where it is first needed
# (cosmos_site/data_folders.py), and a system check reports one that cannot be (cosmos_site/checks.py).


@functools.cache
def _kept_secret_key() -> str:
    """A key generated once and kept in the data directory, read (or made) when first used."""
    key_file = COSMOS_DATA_DIR / "secret_key"
    if not key_file.exists():
        COSMOS_DATA_DIR.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            with open(key_file, "x", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        except FileExistsError:
            pass
    return key_file.read_text(encoding="utf-8").strip()


# COSMOS_SECRET_KEY if given, else the kept key: lazy, so only a process that signs something
# (sessions, CSRF, password resets) reads or creates the file.
SECRET_KEY = env_secret("COSMOS_SECRET_KEY") or lazy(_kept_secret_key, str)()
DEBUG = env_bool("COSMOS_DEBUG", False)
ALLOWED_HOSTS = env_list("COSMOS_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("COSMOS_CSRF_TRUSTED_ORIGINS", [])

# --- Applications -----------------------------------------------------------------------------

INSTALLED_APPS = [
    "cosmos_site.daphne_app.DaphneConfig",  # daphne's runserver; its server loaded only where it serves
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "ninja",  # serves the API's docs page (/api/docs) from its own static files, not a CDN
    # In dependency order: each app uses only those above it (the contracts in pyproject.toml).
    "prompts",
    "nodes",
    "inputs",
    "webhooks",
    "runs",
]

MIDDLEWARE = [
    # A view that cannot get the database in time answers 503 with Retry-After (see the module).
    "cosmos_site.overload.DatabaseBusyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cosmos_site.request_guards.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "cosmos_site.urls"
WSGI_APPLICATION = "cosmos_site.wsgi.application"
ASGI_APPLICATION = "cosmos_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Live updates. Embedded: an in-memory layer, fed by a relay in the web process that reads new
# progress rows from the database (workers and the command line are other processes). Scale-out:
# Redis, and every process that records progress publishes it directly.
REDIS_URL = env_secret("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured("REDIS_URL is not valid: use redis://HOST:PORT/DB")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
COSMOS_LIVE_RELAY = not REDIS_URL
# Seconds between the relay's looks at new progress rows.
COSMOS_RELAY_INTERVAL = env_float("COSMOS_RELAY_INTERVAL", 0.3, minimum=0.05, maximum=10)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Uploaded input videos (the new-run page): kept under the data folder like every other input.
COSMOS_UPLOADS_DIR = COSMOS_DATA_DIR / "uploads"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
COSMOS_MAX_UPLOAD_BYTES = env_int("COSMOS_MAX_UPLOAD_MB", 4096, minimum=1) * 1024 * 1024
# Server folders whose renders anyone may name as a run's inputs from the web or the API (each
# user may always use their own input sets, uploads and runs). None by default: a path on the
# server is not a user's to read just because the server can.
COSMOS_INPUT_ROOTS = env_paths("COSMOS_INPUT_ROOTS")
# Largest JSON body the API reads; a bigger one gets a 413 before it is read.
COSMOS_API_MAX_BODY_BYTES = env_int("COSMOS_API_MAX_BODY_KB", 256, minimum=1, maximum=100 * 1024) * 1024

# --- Database ---------------------------------------------------------------------------------

SQLITE_BUSY_TIMEOUT = env_float("COSMOS_SQLITE_BUSY_TIMEOUT", 20.0, minimum=0.1)
# SQLite's defaults (a 2 MB page cache per connection, reads copied through it) make a search
# over a large library fetch the full-text index again for each query. Memory-mapped reads share
# the OS's cache between every connection and process; the page cache only grows as it is used.
SQLITE_CACHE_MB = env_int("COSMOS_SQLITE_CACHE_MB", 64, minimum=2)
SQLITE_MMAP_MB = env_int("COSMOS_SQLITE_MMAP_MB", 2048, minimum=0)


# Django's SQLite backend, with a process's writers taking the write lock first come, first served.
SQLITE_ENGINE = "cosmos_site.sqlite_backend"


def _sqlite_options() -> dict:
    # WAL lets readers (pages, the CLI) run while a runner writes progress; IMMEDIATE takes the
    # write lock at BEGIN so two writers queue on the busy timeout instead of failing mid-transaction.
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": SQLITE_BUSY_TIMEOUT,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            f"PRAGMA cache_size=-{SQLITE_CACHE_MB * 1024}; PRAGMA mmap_size={SQLITE_MMAP_MB * 1024 * 1024};"
        ),
    }


# Requests a web process works on at once, each in a thread with (at most) one database
# connection; more wait their turn for up to COSMOS_WEB_QUEUE_TIMEOUT seconds, then get a 503
# (cosmos_site.overload). Unbounded, a burst made a thread per request: PostgreSQL ran out of
# connections, and SQLite's write lock was held ever longer by a writer short of CPU.
COSMOS_WEB_CONCURRENCY = env_int("COSMOS_WEB_CONCURRENCY", 8, minimum=1, maximum=1000)
COSMOS_WEB_QUEUE_TIMEOUT = env_float("COSMOS_WEB_QUEUE_TIMEOUT", 60.0, minimum=0.1, maximum=3600)

# PostgreSQL: each process keeps its connections in a pool of at most COSMOS_DB_POOL_SIZE (psycopg's
# pool; Django returns a request's or a task's connection to it when the request or task ends).
# Without one, every thread daphne started for a request kept a connection of its own, until the
# server had none left for anyone. The default leaves a web process two connections beyond its
# requests (live pages, the relay); a worker raises its own pool to its thread count (celery.py).
# A request that finds no free connection within COSMOS_DB_POOL_TIMEOUT seconds gets a 503.
DB_POOL_SIZE = env_int("COSMOS_DB_POOL_SIZE", COSMOS_WEB_CONCURRENCY + 2, minimum=1, maximum=1000)
DB_POOL_TIMEOUT = env_float("COSMOS_DB_POOL_TIMEOUT", 10.0, minimum=0.1, maximum=600)


def _postgres_pool() -> dict:
    return {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        "timeout": DB_POOL_TIMEOUT,
        # Connections above min_size idle this long are closed: a burst's connections do not stay.
        "max_idle": 300.0,
    }


def _database() -> dict:
    url = env_secret("DATABASE_URL")
    if url is None:
        return {
            "ENGINE": SQLITE_ENGINE,
            "NAME": COSMOS_DATA_DIR / "cosmos.sqlite3",
            "OPTIONS": _sqlite_options(),
        }
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            "DATABASE_URL is not valid: use postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:////absolute/path"
        )
    try:
        # No persistent connections: PostgreSQL's come from the pool (which needs CONN_MAX_AGE 0),
        # SQLite's are cheap to open.
        config = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not valid: {exc}") from exc
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL is not valid: it names no database (add /NAME at the end)")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = SQLITE_ENGINE
        config["OPTIONS"] = {**_sqlite_options(), **config.get("OPTIONS", {})}
    else:
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "pool": _postgres_pool()}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Internationalisation, static files -------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("COSMOS_TIME_ZONE", "UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(
        f"COSMOS_TIME_ZONE={TIME_ZONE!r} is not a time zone: use a name such as Europe/Berlin"
    )
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = COSMOS_DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders too, so the admin is styled even before collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = env_choice("COSMOS_LOG_LEVEL", "WARNING", ["DEBUG", "INFO", "WARNING", "ERROR"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "level": LOG_LEVEL},
        "file": {
            # Opened at the first record, in a logs folder it creates then.
            "class": "cosmos_site.log_files.RotatingFileHandler",
            "filename": COSMOS_LOGS_DIR / "cosmos.log",
            "delay": True,
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 5,
            "formatter": "plain",
            "level": "INFO",
        },
    },
    "loggers": {
        "django": {"handlers": ["console", "file"], "level": "INFO"},
        # 503s of a busy web process, once per burst; not again through the root logger (daphne gives
        # it a handler of its own).
        "cosmos_site.overload": {"handlers": ["console", "file"], "level": "INFO", "propagate": False},
        "prompts": {"handlers": ["console", "file"], "level": "DEBUG"},
        "runs": {"handlers": ["console", "file"], "level": "DEBUG"},
    },
}

# --- Cosmos ------------------------------------------------------------------------------------

# Speed of the `local-sim` node created on first set-up: 0.03 turns the ~10 minutes of a
# 121-frame Transfer1 run on one H100 into about 20 seconds.
COSMOS_LOCAL_SIM_TIME_SCALE = env_float("COSMOS_LOCAL_SIM_TIME_SCALE", 0.03, minimum=0.0001, maximum=10)
# Minimum seconds between two progress rows of one run (stage changes are always written).
COSMOS_PROGRESS_INTERVAL = env_float("COSMOS_PROGRESS_INTERVAL", 0.5, minimum=0.0, maximum=60)
COSMOS_ADMIN_USERNAME = env_str("COSMOS_ADMIN_USERNAME", "admin")
# Node used when a run names none (and the run it is `--like` has none enabled).
COSMOS_DEFAULT_NODE = env_str("COSMOS_DEFAULT_NODE", "local-sim")


def _default_model(name: str) -> str:
    from cosmos.profiles import UnknownModel, profile_for

    try:
        return profile_for(name).name
    except UnknownModel as exc:
        raise ImproperlyConfigured(f"COSMOS_DEFAULT_MODEL: {exc}") from None


# Model used when a run or prompt names none (a model type or alias: cosmos3, transfer1, …).
COSMOS_DEFAULT_MODEL = _default_model(env_str("COSMOS_DEFAULT_MODEL", "cosmos3_nano"))

# --- GPU nodes over SSH ---------------------------------------------------------------------------

COSMOS_SSH_CONNECT_TIMEOUT = env_float("COSMOS_SSH_CONNECT_TIMEOUT", 10.0, minimum=0.5, maximum=300)
# Attempts for an operation that fails on the network, with exponential backoff and jitter
# starting at COSMOS_SSH_RETRY_DELAY seconds.
COSMOS_SSH_RETRIES = env_int("COSMOS_SSH_RETRIES", 5, minimum=1, maximum=50)
COSMOS_SSH_RETRY_DELAY = env_float("COSMOS_SSH_RETRY_DELAY", 1.0, minimum=0.0, maximum=60)
COSMOS_SSH_KEEPALIVE = env_int("COSMOS_SSH_KEEPALIVE", 15, minimum=0, maximum=3600)
# A log stream that brings neither data nor a heartbeat for this long is taken for a dead link.
COSMOS_SSH_STALL_SECONDS = env_float("COSMOS_SSH_STALL_SECONDS", 20.0, minimum=1, maximum=3600)
# How long a monitor keeps trying to reach a node again before it gives up on a run.
COSMOS_SSH_RECONNECT_SECONDS = env_float("COSMOS_SSH_RECONNECT_SECONDS", 900.0, minimum=0, maximum=7 * 86400)
# Keep a run's folder on the node after its outputs are downloaded (for debugging).
COSMOS_KEEP_REMOTE_SCRATCH = env_bool("COSMOS_KEEP_REMOTE_SCRATCH", False)
# Seconds between TERM and KILL when a running job is cancelled.
COSMOS_CANCEL_GRACE_SECONDS = env_float("COSMOS_CANCEL_GRACE_SECONDS", 10.0, minimum=0, maximum=600)

# --- Queue: Celery workers over an embedded broker (files) or Redis ---------------------------------

# The database is the truth: messages only wake workers up. They are acknowledged on receipt,
# so an hour-long job never depends on a broker's visibility timeout; anything a dead worker
# dropped is found again by the reconciler.
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # Kombu's filesystem transport, with messages that readers only ever see whole.
    CELERY_BROKER_TRANSPORT = "cosmos_site.broker:Transport"
    # Its folders are created by the transport when it first connects (cosmos_site/broker.py).
    _broker = COSMOS_DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "store_processed": False,
        # Broadcasts (inspect, revoke) need a control folder on this transport.
        "control_folder": str(_broker / "control"),
        "polling_interval": 0.1,
    }
elif not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL is not valid: use redis://HOST:PORT/DB (or leave it unset)")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(COSMOS_DATA_DIR / "celerybeat-schedule")
# Celery's file-backed scheduler, creating the data folder before it opens its file there.
CELERY_BEAT_SCHEDULER = "cosmos_site.celery:PersistentScheduler"

# Webhooks: a try waits this long for an answer; a failed one is tried again after the base
# delay, doubled at each try (at most COSMOS_WEBHOOK_RETRY_MAX_DELAY) for COSMOS_WEBHOOK_RETRY_FOR
# seconds after the event, then failed. Beat looks for due retries every COSMOS_WEBHOOK_DUE_SECONDS.
COSMOS_WEBHOOK_TIMEOUT = env_float("COSMOS_WEBHOOK_TIMEOUT", 10.0, minimum=0.1, maximum=120)
# Seconds a webhook URL's host may take to resolve, at registration (a web request waits) and at each send.
COSMOS_WEBHOOK_RESOLVE_TIMEOUT = env_float("COSMOS_WEBHOOK_RESOLVE_TIMEOUT", 5.0, minimum=0.1, maximum=60)
COSMOS_WEBHOOK_RETRY_BASE_DELAY = env_float("COSMOS_WEBHOOK_RETRY_BASE_DELAY", 5.0, minimum=0, maximum=3600)
COSMOS_WEBHOOK_RETRY_MAX_DELAY = env_float("COSMOS_WEBHOOK_RETRY_MAX_DELAY", 3600.0, minimum=0, maximum=86400)
COSMOS_WEBHOOK_RETRY_FOR = env_float("COSMOS_WEBHOOK_RETRY_FOR", 86400.0, minimum=0, maximum=7 * 86400)
COSMOS_WEBHOOK_DUE_SECONDS = env_float("COSMOS_WEBHOOK_DUE_SECONDS", 5.0, minimum=0.5, maximum=3600)
# Delivered and failed deliveries stay listed (in the admin, with their answers) this many days.
COSMOS_WEBHOOK_KEEP_DAYS = env_float("COSMOS_WEBHOOK_KEEP_DAYS", 30.0, minimum=0.01, maximum=3650)

# Seconds between reconciliations (re-attach monitors, re-dispatch lost work, settle ended jobs).
COSMOS_RECONCILE_SECONDS = env_float("COSMOS_RECONCILE_SECONDS", 60.0, minimum=0.5, maximum=3600)
CELERY_BEAT_SCHEDULE = {
    "reconcile": {"task": "runs.tasks.reconcile", "schedule": COSMOS_RECONCILE_SECONDS},
    # Uploads kept for a New run form that was never sent again: deleted a day after their upload.
    "expire-pending-uploads": {"task": "inputs.tasks.expire_pending_uploads", "schedule": 3600.0},
    # Webhook deliveries whose retry is due, or whose message a dead worker dropped.
    "send-due-webhooks": {"task": "webhooks.tasks.send_due_webhooks", "schedule": COSMOS_WEBHOOK_DUE_SECONDS},
    # Ended deliveries past COSMOS_WEBHOOK_KEEP_DAYS.
    "prune-webhook-deliveries": {"task": "webhooks.tasks.prune_webhook_deliveries", "schedule": 3600.0},
}
# A job monitor refreshes its heartbeat every few seconds; one silent this long is replaced.
COSMOS_MONITOR_STALE_SECONDS = env_float("COSMOS_MONITOR_STALE_SECONDS", 60.0, minimum=1, maximum=3600)
# Automatic retries of a run whose node could not be reached or whose transfer failed.
COSMOS_RUN_RETRIES = env_int("COSMOS_RUN_RETRIES", 3, minimum=0, maximum=20)
COSMOS_RUN_RETRY_DELAY = env_float("COSMOS_RUN_RETRY_DELAY", 30.0, minimum=0, maximum=3600)
# Tries at saving a run's outputs when this machine's disk refuses them (full, read-only, no
# permission) before the run fails `storage`; the wait between tries starts here and doubles.
COSMOS_STORAGE_TRIES = env_int("COSMOS_STORAGE_TRIES", 5, minimum=1, maximum=50)
COSMOS_STORAGE_RETRY_DELAY = env_float("COSMOS_STORAGE_RETRY_DELAY", 10.0, minimum=0, maximum=3600)
# The most runs one sweep may queue: a bigger grid is refused before anything is written.
COSMOS_SWEEP_MAX_RUNS = env_int("COSMOS_SWEEP_MAX_RUNS", 500, minimum=1, maximum=100_000)
