"""The ``cosmos-planner`` command: ``main`` dispatches to one module per subcommand."""
