"""Many runs quickly, for tests and benchmarks of pages over a large database."""

from django.utils import timezone

from prompts.models import Prompt
from runs.models import Progress, Run, RunStatus

STATUSES = [RunStatus.COMPLETED] * 6 + [
    RunStatus.FAILED,
    RunStatus.PENDING,
    RunStatus.RUNNING,
    RunStatus.CANCELLED,
]


def fill(owner, node, count: int) -> None:
    """``count`` runs of varied status, each with outputs and a progress event, in bulk."""
    now = timezone.now()
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(prompt_text=f"scene {n}", name=f"scene-{n}", owner=owner)
            for n in range(max(1, count // 100))
        ]
    )
    runs = []
    for n in range(count):
        status = STATUSES[n % len(STATUSES)]  # every kind of run, at any size
        terminal = status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
        runs.append(
            Run(
                prompt=prompts[n % len(prompts)],
                owner=owner,
                node=node,
                status=status,
                failure_kind="oom" if status == RunStatus.FAILED else "",
                started_at=now,
                completed_at=now if terminal else None,
                starred=n % 17 == 0,
                rating=n % 5 + 1 if n % 3 == 0 else None,
                outputs={"video": "/x/output.mp4", "thumbnail": "/x/thumbnail.jpg"}
                if status == RunStatus.COMPLETED
                else {},
                execution_config={"parameters": {"num_steps": 35}},
            )
        )
    Run.objects.bulk_create(runs, batch_size=5000)
    Progress.objects.bulk_create(
        [Progress(run=run, stage="generating", percentage=50.0) for run in runs], batch_size=5000
    )
