"""relance: customer journeys (referrals, reminders, rewards, bulk sends) as Temporal workflows."""
