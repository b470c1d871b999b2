"""Safe people and projects: identities, policy, entry decisions, audit ledger."""
