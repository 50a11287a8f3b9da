"""Run every example flow once (each failure is expected), then wait for rundossier's background work.

python -m flows_example        # then: rundossier runs / rundossier show RUN_ID
"""

from __future__ import annotations

import asyncio
import inspect

from rundossier.prefect import wait

from .flows import ALL


def main() -> None:
    for fl in ALL:
        if inspect.iscoroutinefunction(fl.fn):
            state = asyncio.run(fl(return_state=True))
        else:
            state = fl(return_state=True)
        print(f"{fl.name}: {state.type.value} {state.message or ''}")
    wait(60)


if __name__ == "__main__":
    main()
