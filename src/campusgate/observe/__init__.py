"""The observe plane: one access record per request, written off the request path.

``record.py`` is the record; ``queue.py`` the bounded queue the request path drops it
into; ``writer.py`` the batch writer that drains the queue into the configured sinks
(``sinks/``) and the roll-ups; ``metrics.py``, ``tracing.py``, ``analytics/`` and
``alerts/`` read what it wrote.  See docs/observability.md.
"""
