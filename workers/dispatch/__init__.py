"""Getting builds to workers: the queue, the Celery app and task, one build job, claims and
leases, worker heartbeats and the metrics shared by every process.
"""
