"""Machine checks of THEORY §7: claim objects, their registry, and the engine that runs them.

```python
import claims
for r in claims.run_claims(claims.select("C5,C8"), examples=10, seed=0):
    print(r.claim.id, r.result, r.worst_margin)
```
A new module in this package that calls `claims.register(Claim(...))` is picked up by
`cdyn verify` and by pytest with no other change.
"""

from ._claim import CheckResult, Claim, Instance
from ._engine import DEFAULT_EXAMPLES, ClaimResult, counterexample_record, replay, run_claim, run_claims
from ._registry import all_claims, get_claim, load_all, register, select

__all__ = [
    "DEFAULT_EXAMPLES", "CheckResult", "Claim", "ClaimResult", "Instance", "all_claims", "counterexample_record",
    "get_claim", "load_all", "register", "replay", "run_claim", "run_claims", "select",
]
