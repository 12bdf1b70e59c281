"""`dash demo`: the simulated Dash (simulation) and its cast of people (cast)."""
