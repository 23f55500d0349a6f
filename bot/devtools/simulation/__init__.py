"""A simulated day of traffic through the trained model and the real channel path."""
