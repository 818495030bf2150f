"""Sweeps: per-job threading, resume and objectives (``jobs``), sweep reports (``collect``, ``report``,
``tables``) and their statistics (``stats``, ``summary``)."""
