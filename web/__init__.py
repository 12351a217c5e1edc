"""The Flask site: firms, tech-transfer offices and officers over the matching engine.

`create_app` follows Flask's application-factory pattern; each resource (database, matching
engine, accounts) registers itself with one `init_app(app)`, and each area of the site is a
blueprint with its templates under `templates/<blueprint>/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web import (
    admin,
    api,
    auth,
    backup,
    commands,
    connections,
    dashboard,
    database,
    errors,
    matching,
    needs,
    notify_settings,
    results,
    search,
    security,
    shortlists,
    templating,
)
from web.config import flask_config, settings_for


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = settings_for(test_config)
    app.extensions["settings"] = settings
    app.config.update(flask_config(settings, test_config))

    security.init_app(app)
    database.init_app(app)
    auth.init_app(app)
    matching.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    commands.init_app(app)
    backup.init_app(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(search.bp)
    app.register_blueprint(needs.bp)
    app.register_blueprint(results.bp)
    app.register_blueprint(shortlists.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(dashboard.bp)
    connections.init_app(app)
    notify_settings.init_app(app)
    app.register_blueprint(api.bp)
    return app
