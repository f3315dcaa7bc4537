"""The schedule: slots (pure arithmetic), tick (what is due now), runner (APScheduler)."""
