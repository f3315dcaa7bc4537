"""The schedule: tick (what is due now), runner (APScheduler); the arithmetic is digest.slots."""
