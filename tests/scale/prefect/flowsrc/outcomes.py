"""What each flow run of the scale test does (seeded): shared by the flow and the test's checks."""

from __future__ import annotations

import random


class Plan:
    FLOW = "scale-flow"
    ITEMS = 4
    SEED = 20
    KILL_INDEX = 7
    ITEM_FAILURE_RATE = 0.08
    FLAKY_EVERY = 3

    @classmethod
    def item_fails(cls, index: int, item: int) -> bool:
        return random.Random(f"{cls.SEED}:{index}:{item}").random() < cls.ITEM_FAILURE_RATE

    @classmethod
    def flaky_fails(cls, index: int) -> bool:
        """`flaky` fails its first try (and recovers on the retry)."""
        return index % cls.FLAKY_EVERY == 0

    @classmethod
    def killed(cls, index: int) -> bool:
        return index == cls.KILL_INDEX

    @classmethod
    def flow_fails(cls, index: int) -> bool:
        return any(cls.item_fails(index, i) for i in range(cls.ITEMS))
