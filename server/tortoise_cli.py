"""Configuration for tortoise's own CLI (``tortoise makemigrations``, ``sqlmigrate``, ``history``),
named in pyproject's ``[tool.tortoise]``. The running service never imports this module."""

from infra.settings import Settings
from server.database import tortoise_config

TORTOISE_ORM = tortoise_config(Settings.from_env().database_url)
