"""The `hostuser` test guest (componentize-py).

Implements world `test:host/hostuser`. Everything it does goes through its imports (the
host's logger, key-value store and clock), so a host test can check exactly which calls
were made, with which arguments, and what happens when a host function raises.
"""

import wit_world
from wit_world import now
from wit_world.imports import kv, logger
from wit_world.imports.logger import Level


class WitWorld(wit_world.WitWorld):
    def run(self, n: int) -> str:
        t0 = now()
        logger.log(Level.INFO, f"run({n}) start")
        # `with` drops the store handle at the end, so the host's destructor runs now,
        # not whenever the guest's garbage collector gets to it.
        with kv.Store("run") as store:
            for i in range(n):
                store.set(f"key-{i}", str(i * i))
            found = [store.get(f"key-{i}") for i in range(n)]
            if store.get("missing") is not None:
                logger.log(Level.ERROR, "store returned a value for 'missing'")
        logger.log(Level.DEBUG, f"read {sum(v is not None for v in found)} of {n} values")
        total = sum(int(v) for v in found if v is not None)
        opened = kv.open_count()
        t1 = now()
        return f"n={n} total={total} opened={opened} elapsed={t1 - t0}"

    def roundtrip_kv(self, key: str, value: str) -> "str | None":
        with kv.Store("roundtrip") as store:
            store.set(key, value)
            return store.get(key)

    def fail_through(self) -> int:
        # If the host's `now` raises, the guest never gets here: the call traps and the
        # host's exception surfaces from this export.
        return now() % 2**32
