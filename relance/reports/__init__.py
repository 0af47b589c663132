"""Reports on what the journeys sent and what it brought: messages, alerts, timing, experiments."""
