"""``python -m smrunner``: run the session's script and exit with its status.

Without arguments the output capture starts first (``smrunner.capture``) and runs the runner
proper as ``python -m smrunner --run`` with its output on pipes.
"""

import sys

if sys.argv[1:] == ["--run"]:
    from smrunner.main import main
else:
    from smrunner.capture import main

raise SystemExit(main())
