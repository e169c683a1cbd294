"""The `distpose` command line: `main` dispatches to one module per subcommand."""
