"""`python -m maider_tui.sim`: the `maider-tui sim` command (its options live with the commands)."""

from maider_tui.commands.sim import main

if __name__ == "__main__":
    raise SystemExit(main())
