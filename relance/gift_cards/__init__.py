"""E-gift cards: issued through a provider, followed by a GiftCardWorkflow until used or expired."""
