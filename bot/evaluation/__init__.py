"""`make eval`: how well the trained model generalises to real user questions."""
