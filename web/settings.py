"""The app's `Settings` (built once by `create_app`), for code that hands them down."""

from __future__ import annotations

from flask import Flask

from settings import Settings


def settings_of(app: Flask) -> Settings:
    return app.extensions["settings"]
