"""Contacts: upsert, identity, consents, purchases and erasure."""
