"""The kernel manager the book's notebooks run under.

jupyter_client interrupts a kernel (SIGINT) before it asks it to shut down, and ipykernel logs
"KeyboardInterrupt caught in kernel" at ERROR when the signal lands after the last cell: a line
in a clean build's log that looks like a failure. A notebook that has finished has nothing to
interrupt, so this manager skips the signal while it shuts the kernel down; an interrupt asked
for at any other time is sent as before.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager

__all__ = ["QuietShutdownKernelManager"]


class QuietShutdownKernelManager(AsyncKernelManager):
    """:class:`AsyncKernelManager` that shuts a kernel down without interrupting it first."""

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:
            return  # the shutdown request follows; after the last cell there is nothing to stop
        await super()._async_interrupt_kernel()
