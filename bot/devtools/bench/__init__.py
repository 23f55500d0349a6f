"""`make bench`: ours vs stock `rasa init` vs the scale-out, in one run."""
