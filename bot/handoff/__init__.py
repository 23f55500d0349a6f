"""Hand-off to human agents: tickets with the conversation's context."""
