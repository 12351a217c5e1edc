"""The WSGI entry point for production servers (`gunicorn web.wsgi:app`).

Unlike `flask run`, which builds the matching service on the first request, this loads the
model and repairs the indexes before the worker accepts a connection, and starts computing the
coverage (seconds at 100,000 results) in the background so that no officer's first shortlist
page waits for all of it.
"""

from web import create_app
from web.matching import service

app = create_app()
with app.app_context():
    service().warm_up()
