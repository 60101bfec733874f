"""Celery tasks: thin wakers over the queue services. Arguments are ids; every task is idempotent.

The database decides what happens: a task re-reads the rows, claims its step with a conditional
UPDATE, and does nothing when the step is done or owned by a live worker. Messages are
acknowledged on receipt (no visibility-timeout redelivery of hour-long jobs); what a killed
worker dropped is picked up by `reconcile`, which beat runs every COSMOS_RECONCILE_SECONDS and
every worker runs when it starts.
"""

from celery import shared_task
from celery.signals import worker_ready

from nodes.models import RemoteJob
from runs.datasets.export import dataset_export_run, dataset_exports_resume
from runs.models import DatasetExport, Run
from runs.services import queue


@shared_task(ignore_result=True)
def stage_run(run_id: str) -> None:
    run = Run.objects.filter(pk=run_id).select_related("node", "prompt").first()
    if run is not None:
        queue.run_stage(run=run)


@shared_task(ignore_result=True)
def schedule() -> None:
    queue.queue_schedule()


@shared_task(ignore_result=True)
def launch_job(job_id: str) -> None:
    job = RemoteJob.objects.filter(pk=job_id).select_related("node").first()
    if job is not None:
        queue.job_launch(job=job)


@shared_task(ignore_result=True)
def monitor_job(job_id: str) -> None:
    job = RemoteJob.objects.filter(pk=job_id).select_related("node").first()
    if job is not None:
        queue.job_monitor(job=job)


@shared_task(ignore_result=True)
def collect_job(job_id: str) -> None:
    job = RemoteJob.objects.filter(pk=job_id).select_related("node").first()
    if job is not None:
        queue.job_collect(job=job)


@shared_task(ignore_result=True)
def recover_launch(job_id: str) -> None:
    job = RemoteJob.objects.filter(pk=job_id).select_related("node").first()
    if job is not None:
        queue.job_recover_launch(job=job)


@shared_task(ignore_result=True)
def reconcile() -> None:
    queue.queue_reconcile()
    dataset_exports_resume()


@worker_ready.connect
def reconcile_on_start(**kwargs) -> None:
    """A worker that starts (after a crash, too) looks for work the dead one left at once."""
    reconcile.delay()


@shared_task(ignore_result=True)
def cancel_run(run_id: str, reason: str) -> None:
    from runs.services.runs import run_cancel

    run = Run.objects.filter(pk=run_id).select_related("job__node").first()
    if run is not None:
        run_cancel(run=run, reason=reason)


@shared_task(ignore_result=True)
def export_dataset(export_id: str) -> None:
    export = DatasetExport.objects.filter(pk=export_id).select_related("owner").first()
    if export is not None:
        dataset_export_run(export=export)
