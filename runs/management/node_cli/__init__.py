"""`cosmos_node`'s subcommands, grouped by what they touch: a module each, the command only dispatches.

Every subcommand is a pair in its module: ``add_<action>_parser(actions)`` declares its
arguments, ``handle_<action>(cli, options)`` carries it out (cli: a NodeCli).
"""
