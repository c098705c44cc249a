"""The hypothesis settings of this suite: the same examples on a slow machine.

Several engineers share a 2-core machine: under load, generating examples can take longer
than hypothesis' too_slow health check allows, and one example longer than its deadline.
Neither says anything about the code under test, so both are off; the number of examples
and the search stay as each test asks (no test gets weaker). Loaded by tests/conftest.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

#: health checks that measure the machine, not the test
TIMING_CHECKS = [HealthCheck.too_slow]

settings.register_profile("gadgetsmith", deadline=None, suppress_health_check=TIMING_CHECKS)
settings.load_profile("gadgetsmith")
