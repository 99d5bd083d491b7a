from tests.fallback.conftest import frontier, proxy  # noqa: F401  (the frontier upstream behind a fault proxy)
