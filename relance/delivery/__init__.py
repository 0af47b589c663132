"""The send policy every sender goes through: decide, render, ledger, channel."""
