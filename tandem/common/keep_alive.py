"""Keep-alive timing between Tandem's services, chosen so a pooled connection is never reused just as
its server closes it.

A client that reuses an idle connection at the moment the server's idle timer closes it gets a reset
(httpx ReadError / RemoteProtocolError) for a request the server never read. uvicorn, llama-server
and vLLM all close idle connections after 5 s, and httpx's pools also expire them after 5 s: with
equal timers the race is open (it surfaced as a 503 from the router in the fuzz test). So our clients
drop an idle connection well before any of those servers would, and our own services keep idle
connections longer than any client or load balancer in front of them is likely to (AWS ALB: 60 s).
"""

from __future__ import annotations

import httpx

CLIENT_IDLE_EXPIRY_S = 2.0  # under the 5 s idle timeout of uvicorn, llama-server and vLLM
SERVER_KEEP_ALIVE_S = 75  # over the 60 s idle timeout of common load balancers


def pool_limits(max_connections: int = 100, max_keepalive_connections: int = 20) -> httpx.Limits:
    """httpx's pool limits (its defaults unless given), with our idle expiry."""
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections,
                        keepalive_expiry=CLIENT_IDLE_EXPIRY_S)
