"""``python -m ocisign`` runs the same CLI as the ``ocisign`` console script.

``--version`` alone is answered here, as :func:`ocisign.cli.app.main` answers it, without importing
the CLI (no ``from __future__`` import either: see :mod:`ocisign.version`).
"""

import sys

if sys.argv[1:] == ["--version"]:
    from ocisign.version import own_version

    print(f"ocisign {own_version()}")
    raise SystemExit(0)

from ocisign.cli.app import main  # after the --version fast path

raise SystemExit(main())
