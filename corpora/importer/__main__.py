"""`python -m corpora.importer`: see `corpora.importer.cli`."""

import sys

from corpora.importer.cli import main

if __name__ == "__main__":
    sys.exit(main())
