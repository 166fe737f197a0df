"""``python -m unlearn_core``: the command-line interface (see :mod:`unlearn_core.cli`)."""

from unlearn_core.cli import exit_now, main

if __name__ == "__main__":
    exit_now(main())
