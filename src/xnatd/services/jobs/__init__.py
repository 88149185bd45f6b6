"""Processing jobs: the commands a site offers, launching and reading jobs as users see them,
and the runs the dispatcher claims, finishes and recovers."""

__all__ = [
    "job_commands",
    "job_runs",
    "jobs",
]
