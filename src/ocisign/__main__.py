"""``python -m ocisign`` runs the same CLI as the ``ocisign`` console script."""

from __future__ import annotations

from ocisign.cli.app import main

raise SystemExit(main())
