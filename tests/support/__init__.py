"""Tools for the fault and abuse tests: webhook builders, provider outages, figures, processes."""
