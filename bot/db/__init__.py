"""Our database: the engine per URL, every table of ours (models.py) and its Alembic migrations."""
