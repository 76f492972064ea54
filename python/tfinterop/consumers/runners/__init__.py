"""tfinterop.consumers.runners."""
