# Load the Celery app with Django, so that tasks enqueued from web or commands use its settings.
from cosmos_site.celery import app as celery_app

__all__ = ("celery_app",)
