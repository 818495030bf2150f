"""What a run records about itself: provenance, its identity in the trackers (W&B, MLflow), the
parameter counts, the final metrics in the run summary and a validation gallery for classifiers."""
