"""The officers' dashboard (/dashboard): what the platform produced and where it leads.

Officers and admins see every figure of `service.dashboard`; an office sees the same for its
own institution's results (interest and requests per result, the results nobody asks for);
firms get 403. Filters (period, industry, city) come from the query string (`filters`: a bad
one is a 400 naming it), charts are SVG drawn on the server (`charts`, loaded as images, so
the Content-Security-Policy holds), each figure's numbers are a table beside its chart
(`tables`), and the whole lot downloads as one XLSX, a sheet per figure (`exports`). The JSON
answer is web.api.dashboard's.

The blueprint is made here and `views` and `exports` add their routes to it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# The route modules need `bp` above, so they are imported after it (the blueprint-package
# pattern); importing them is what registers their routes.
from web.dashboard import exports, views  # noqa: E402

__all__ = ["bp", "exports", "views"]
