"""Security: rate limits, offered-payload checks, signed widget sessions, API tokens."""
