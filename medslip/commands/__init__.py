"""CLI subcommands; each module is registered in :data:`medslip.cli.COMMAND_MODULES`."""
