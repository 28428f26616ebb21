"""Admin schedules: restarts with countdowns, player-aware gating, chains of steps that each
wait for their effect; the one domain that combines the others (as schedule steps)."""
