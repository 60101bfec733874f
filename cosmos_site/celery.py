"""The Celery app (Celery's Django recipe): settings under CELERY_*, tasks from each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")

app = Celery("cosmos_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
