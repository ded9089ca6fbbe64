"""The ready study specs (TOML files beside this one), installed as `seedvar.studies` so that
`seedvar sweep quick` finds them by name from any folder."""
