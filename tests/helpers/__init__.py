"""Shared test set-up: stub activities, journey stacks, events and ledger reads."""
