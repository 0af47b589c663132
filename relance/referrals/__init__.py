"""Referrals: fraud guards, the ReferralWorkflow's starter, conversions and operator decisions."""
