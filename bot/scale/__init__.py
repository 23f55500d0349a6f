"""Rasa's standard scale-out: several Rasa servers behind nginx, PostgreSQL tracker store,
Redis lock store, the same model everywhere."""
