"""The service layer: what ties the database, the engine and the encoder together.

- `composition`: `build_service(settings, encoder=None)`, the one place that composes them;
- `matching`: `MatchService`, the per-process engine kept in step with the database;
- `demo`: setting up the demo (corpus, accounts, indexes), once for the site and the CLI;
- the domain writes that are not views: `records` (needs, results, marks), `accounts`,
  `audit`, `signin_limits`; and `backup` (database + index files).

It imports `corpora`, `matcher` and `embeddings`, never Flask; `web` imports it.
"""
