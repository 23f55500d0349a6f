"""Privacy: find and mask secrets and personal data before anything is stored or logged."""
