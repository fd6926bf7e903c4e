"""Google Cloud Dataflow jobs: ``DataflowJob`` (``dataflow-job``) and ``ObservedDataflowJob``
(``dataflow-job-observed``).

``job.py`` holds the two lifecycles and their commands, ``_spec.py`` the specification rows
each transition rests on, ``_api.py`` the API's names and the optional client.
"""

from __future__ import annotations

from .job import DataflowJob, DataflowJobContext, JobChange, ObservedDataflowJob

__all__ = ["DataflowJob", "DataflowJobContext", "JobChange", "ObservedDataflowJob"]
