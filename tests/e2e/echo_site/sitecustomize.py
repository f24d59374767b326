"""Imported by Python at startup when this directory is on PYTHONPATH: only in the vna
that tests/e2e/test_punt.py starts.  Registers the test-only echo feature
(tests/unit/echo_feature.py, also on that PYTHONPATH) before the vna imports
vna.desired, so production code carries no test hook.
"""

from echo_feature import ECHO

import vna.features as registry

registry.FEATURES = (*registry.FEATURES, ECHO)
# In place, for anyone holding the dict (vna.punt.dispatch reads it at call time).
registry.BY_KIND.update(registry._check(registry.FEATURES))
