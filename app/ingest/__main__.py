"""`python -m app.ingest`: the stream ingest."""

import asyncio
import signal

from app.common.logging import configure
from app.common.settings import get_settings
from app.ingest.service import Ingest


async def main() -> None:
    settings = get_settings()
    configure(settings.log_level)
    ingest = Ingest(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, ingest.stopping.set)
    await ingest.run()


asyncio.run(main())
