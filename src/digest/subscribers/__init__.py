"""Readers: the list in the store, file sync, import/export, sign-up and consent, GDPR."""
