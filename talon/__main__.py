"""`python -m talon`: the talon command line."""

from talon.cli import main

main()
