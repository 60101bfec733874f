"""The steps of a job's pipeline on its node, one module each; runs/runner.py assembles them.

base.py holds what every step shares (the claim, progress, ending a run), launch.py stages the
inputs and starts the job, monitor.py follows its log, collect.py ends each run from what the job
left, and saving.py brings a run's outputs to this machine.
"""
