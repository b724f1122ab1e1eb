"""The `directmail` command, recording which modules it imported: proof that a command did not load dbt.

    python tests/import_probe.py [directmail options and command…]

With IMPORT_PROBE_OUTPUT set, the top-level names of every module imported are written there (JSON) when
the process exits; output and exit code are the command's own. Used by the tests and `bench/startup.py`.
"""

from __future__ import annotations

import atexit
import json
import os
import sys


def _record() -> None:
    path = os.environ.get("IMPORT_PROBE_OUTPUT")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(sorted({name.split(".")[0] for name in sys.modules}), handle)


if __name__ == "__main__":
    atexit.register(_record)
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not tests/
    from directmail.cli import main

    sys.argv[0] = "directmail"
    main()
