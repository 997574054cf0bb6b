"""``python -m storegui``: the same as the ``storegui`` command."""

from storegui.cli import main

raise SystemExit(main())
