"""``python -m smrunner``: run the session's script and exit with its status."""

from smrunner.main import main

raise SystemExit(main())
