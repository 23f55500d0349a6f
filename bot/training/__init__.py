"""Training, evaluation (`make eval`), the eval gate, the model switch and the retrain job."""
