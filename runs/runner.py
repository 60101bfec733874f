"""A job's pipeline on its node: stage the inputs, launch, follow the log, collect each run.

A job is one model invocation: a single run, or a batch of compatible runs sharing one model
load; the pipeline treats a single run as a batch of one. The job runs detached on the node
(nodes/remote/jobs.py); this pipeline only watches it. Each step first claims the job (a token
with a heartbeat kept by a thread of its own, see nodes/claims.py), so two workers never do the
same step, and a worker that died is replaced once its heartbeat is stale: launching is never
repeated (the node settles whether a job started, nodes/remote/jobs.py), monitoring resumes from
the saved log offset, collecting picks up where it was. A worker that was only slow and lost its
claim stops before its next irreversible act. Terminal states go through services.runs.run_finalize.
No transaction is held across node I/O.

The steps live in runs/pipeline/: launch.py, monitor.py, collect.py (with saving.py), on base.py.
"""

from runs.pipeline.base import stop_job
from runs.pipeline.collect import Collecting
from runs.pipeline.launch import Launching
from runs.pipeline.monitor import Monitoring

__all__ = ["JobPipeline", "stop_job"]


class JobPipeline(Launching, Monitoring, Collecting):
    """Launch, monitor and collect one job; each step is a no-op unless the job is at that step."""
