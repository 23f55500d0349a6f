"""Staff changes to the FAQ and the training data: add an example, draft a topic, history, rollback."""
