"""Promo codes given as rewards: pools and generated codes."""
