"""Machine checks of THEORY §7: claim objects, their registry, and the engine that runs them.

```python
from cdyn import claims
for r in claims.run_claims(claims.select("C5,C8"), examples=10, seed=0):
    print(r.claim.id, r.result, r.worst_margin)
```
A new module in this package that calls `claims.register(Claim(...))` is picked up by
`cdyn verify` and by pytest with no other change. Claims outside the package come from
plugins: `claims.load_plugin("my_claims.py")` (the CLI's `cdyn --plugin my_claims.py`) or
the entry-point group `cdyn.plugins` (`claims.load_entry_points()`). Authors build them
from `claims.strategies` (instances by construction) and `claims.helpers` (horizons,
tight integration, stage detection, tolerances).
"""

from ._claim import CheckResult, Claim, Instance
from ._engine import DEFAULT_EXAMPLES, ClaimResult, counterexample_record, replay, run_claim, run_claims
from ._engine import margin_json, margins_equal
from ._local import LOCAL_BUDGET
from ._space import Param, Space
from ._registry import all_claims, claim_origin, get_claim, is_registered, load_all, register, select
from ._plugins import (
    ENTRY_POINT_GROUP, PluginError, describe_origin, file_sha256, load_entry_points, load_plugin, loaded_plugins,
    term_origin,
)
from . import helpers, strategies  # public authoring API (side-effect free: they register nothing)

__all__ = [
    "DEFAULT_EXAMPLES", "CheckResult", "Claim", "ClaimResult", "Instance", "all_claims", "counterexample_record",
    "get_claim", "load_all", "register", "replay", "run_claim", "run_claims", "select",
]
__all__ += [
    "ENTRY_POINT_GROUP", "PluginError", "claim_origin", "describe_origin", "file_sha256", "helpers", "is_registered",
    "load_entry_points", "load_plugin", "loaded_plugins", "strategies", "term_origin",
]
__all__ += ["LOCAL_BUDGET", "Param", "Space", "margin_json", "margins_equal"]

# Replay files are untrusted input (size, depth, schema, per-claim instance, budget).
from ._replay import ReplayError, load_record, parse_record  # noqa: E402
__all__ += ["ReplayError", "load_record", "parse_record"]
