"""tfinterop.hardening."""
