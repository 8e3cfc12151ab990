"""The subcommands, one module per group; ``registry.load_commands`` imports every module here."""
