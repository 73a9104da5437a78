"""``tf-nvm recipes``: list the bundled recipes (does not import TensorFlow)."""

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Adds the ``recipes`` parser."""
    parser = subparsers.add_parser("recipes", help="list bundled recipes")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Prints one line per bundled recipe; returns 0."""
    from tf_nvm import recipes  # noqa: PLC0415

    for name in recipes.names():
        print(f"{name:24s} {recipes.load(name).description or ''}")
    return 0
