"""The one TLS context the app's HTTP clients share.

httpx builds an SSL context for every client it makes, loading the CA bundle into each (about
0.8 MiB apiece), and the app makes a client per session on attach and per watchdog activity check. Passing
this one as `verify=` gives the same verification (httpx's defaults, SSL_CERT_FILE/DIR included)
for the price of one.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def shared_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()
