"""Bounces and complaints mailbox providers report after a send."""
