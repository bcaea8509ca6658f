"""How the chaos clients check the server's certificate."""

from __future__ import annotations

import ssl
from typing import TypeAlias

# httpx's ``verify``: False for plain HTTP tests, an SSL context trusting the front's CA.
Verify: TypeAlias = bool | ssl.SSLContext
