"""Auction shortlists (成果拍卖会): officers curate lots, ask for a proposal, export the list.

Only officers (and admins, who pass every role check) reach any view here: each carries
`role_required("officer")`, so firms and offices get 403 before anything is read.
Every change validates all its fields first (`forms`), then writes the change and its audit
entry (who, when, what; `lots`) in one transaction: a bad form saves nothing and says why
beside the field. Which open needs a lot answers comes from the matching engine's coverage
(`coverage`: a result in a need's top K); the proposal method itself is pure and lives in
`matcher.shortlist` (`proposal` is its glue). After the auction each lot is recorded 成交 or
流拍 (`outcomes`, the page's form in `recording`), and `prices` warns of a reserve price out of
line with the result's asking price or the answered needs' budgets. Exports (`exports`) go
through `web.exports`, which guards every text cell against formula injection. `history`
reads a shortlist's audit log back as sentences.

The blueprint is made here and `views`, `recording`, `proposal` and `exports` add their
routes to it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("shortlists", __name__, url_prefix="/shortlists")

# The route modules need `bp` above, so they are imported after it (the blueprint-package
# pattern); importing them is what registers their routes.
from web.shortlists import exports, proposal, recording, views  # noqa: E402

__all__ = ["bp", "exports", "proposal", "recording", "views"]
