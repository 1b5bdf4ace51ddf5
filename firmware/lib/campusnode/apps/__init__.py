"""The three node apps: ``env`` (environment node), ``counter`` (fitness-path equipment), ``gate`` (gate reader)."""
