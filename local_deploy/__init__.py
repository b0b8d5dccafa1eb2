"""Deploy the app to a simulated organization on this machine, and plan against any organization.

``python -m local_deploy plan|deploy|destroy|state|reset|demo``; see :mod:`local_deploy.cli`.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# As in app.py: the repository root first (so that ``constructs`` joins the library's namespace
# package), then the Lambda runtime package (the handlers, and the validation the config shares).
for _path in (str(ROOT / "runtime"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
