"""`make bench`: drive the REST channel with simulated users and measure (issue 5)."""
