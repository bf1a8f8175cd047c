"""Where data, cache and config live (platformdirs), overridable for tests and --data-dir."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "imgsearch"
_ENV_DATA = "IMGSEARCH_DATA_DIR"
_ENV_LOG = "IMGSEARCH_LOG_DIR"
_ENV_CACHE = "IMGSEARCH_CACHE_DIR"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the index and catalog: ``override``, $IMGSEARCH_DATA_DIR, or the user data dir."""
    if override is not None:
        path = Path(override)
    elif os.environ.get(_ENV_DATA):
        path = Path(os.environ[_ENV_DATA])
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Thumbnails and exported models (safe to delete): $IMGSEARCH_CACHE_DIR or the user cache dir."""
    env = os.environ.get(_ENV_CACHE)
    path = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    path = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """Where the rotating log files go: $IMGSEARCH_LOG_DIR or the platform's user log dir
    (~/.local/state/imgsearch/log, ~/Library/Logs/imgsearch, %LOCALAPPDATA%\\imgsearch\\Logs)."""
    env = os.environ.get(_ENV_LOG)
    path = Path(env) if env else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
