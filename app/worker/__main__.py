"""`python -m app.worker`: the YOLO worker."""

import asyncio

from app.common.logging import configure
from app.common.settings import get_settings
from app.worker.consumer import Worker, install_signal_handlers

settings = get_settings()
configure(settings.log_level)
worker = Worker(settings)
install_signal_handlers(worker)
asyncio.run(worker.run())
