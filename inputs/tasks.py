"""Celery tasks of the inputs app: the periodic clean-up of uploads no run started from."""

from celery import shared_task

from inputs.services import input_sets_expire_pending


@shared_task(ignore_result=True)
def expire_pending_uploads() -> None:
    input_sets_expire_pending()
