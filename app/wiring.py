"""What each entry point attaches to the Runtime it builds: the app's queued and scheduled
tasks (``app.tasks``), and the handlers that follow billing's own on a new Stripe event.

``create_app``, the CLI (every command, ``serve`` and ``worker`` among them) and the tests call
``wire``; the modules that use a Runtime only type it, so that none of them is imported by it.
"""

from app import engagements, tasks
from app.runtime import Runtime


def wire(runtime: Runtime) -> Runtime:
    """Register the app's tasks on ``runtime``'s queue and its Stripe event handlers, once;
    returns the runtime."""
    if not runtime.attached:
        runtime.attach(
            deliver_webhook=tasks.register(runtime.queue.huey, runtime),
            stripe_handlers=[engagements.after_stripe_event],
        )
    return runtime
