"""One module per `distpose` subcommand: `add_arguments(parser)` and `run(args) -> int`."""
