"""A delivery worker in its own process, for the crash test: sends until it is killed.

python -m tests.delivery_worker   (settings from DAIBAN_* in the environment)
"""

from __future__ import annotations

import asyncio

from app.context import Context
from app.notifications.delivery import deliver_due
from app.settings import load_settings
from jobs.tasks import MAX_BATCHES


async def main() -> None:
    ctx = Context.build(load_settings())
    while True:
        # claim after claim while the sends go on, as the job does
        if not await deliver_due(ctx, limit=20, batches=MAX_BATCHES):
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main())
