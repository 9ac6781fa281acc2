"""One module per `guide` subcommand; each exposes `command` (a click command).

Modules here are discovered and registered by guide.cli, so adding a command means
adding a module. Keep imports of heavy libraries inside the command functions.
"""
