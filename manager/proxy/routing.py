"""Which URLs the proxy serves."""

from __future__ import annotations

import re

# /project/<project_id>/script/<script_id>/user/<user_id>[/<path>]
PROXY_PATH = re.compile(r"/project/(\d{1,12})/script/(\d{1,12})/user/(\d{1,12})(/.*)?\Z", re.S)
