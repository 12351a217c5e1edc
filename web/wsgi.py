"""The WSGI entry point for production servers (`gunicorn web.wsgi:app`).

Unlike `flask run`, which builds the matching service on the first request, this loads the
model and repairs the indexes before the worker accepts a connection.
"""

from web import create_app
from web.matching import service

app = create_app()
with app.app_context():
    service()
