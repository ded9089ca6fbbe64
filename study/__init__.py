"""seedvar studies: seed sweeps, test modes, tracking, statistics and reports."""
