"""Sweeps: per-job threading, resume and objectives (``jobs``), and sweep reports (``collect``, ``report``)."""
