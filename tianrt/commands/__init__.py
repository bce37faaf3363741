"""CLI subcommands: each module here defines ``register(subparsers)``; tianrt.cli finds them."""
